"""The encrypted callback endpoints (app: ``/wecom/callback``, smart robot: ``/wecom/robot``).

Order of checks on POST: size (413) → query params and envelope (400; DOCTYPE/entities are refused by
``xmlsafe``) → signature over the Encrypt text (403) → decrypt and receive id (400/403) → parse the
plaintext (400) → hand off in the background and answer 200 with an empty body at once. WeCom retries
anything that is not a quick 200, so we never do work before answering, and crypto failures are 4xx,
never 500. Replies go out later through ``deliver`` (message/send or response_url).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

from bot.clock import Clock
from bot.errors import StorageUnavailable
from bot.message import IncomingMessage
from bot.platforms.wecom.crypto import InvalidReceiveId, InvalidSignature, WeComCrypto, WeComCryptoError
from bot.platforms.wecom.parse import PayloadRejected, json_fields, parse_app_message, parse_robot_message
from bot.platforms.wecom.xmlsafe import XMLRejected, parse_fields

log = logging.getLogger("bot.platforms.wecom")

Parser = Callable[[str, dt.datetime], IncomingMessage | None]
Dispatch = Callable[[IncomingMessage], Awaitable[bool]]  # False: not started; raises StorageUnavailable


def raw_query(request: web.Request) -> dict[str, str]:
    """Query params decoded with ``unquote``: yarl and ``unquote_plus`` turn a literal ``+`` (Base64!) into a space."""
    params: dict[str, str] = {}
    for pair in request.rel_url.raw_query_string.split("&"):
        name, _, value = pair.partition("=")
        if name:
            params.setdefault(unquote(name), unquote(value))
    return params


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it exceeds ``limit`` bytes (checked before reading when declared)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def extract_encrypt(body: bytes) -> str:
    """The Encrypt text from an XML envelope, or a JSON one (``encrypt``; Tencent samples also use ``Encrypt``)."""
    if body.lstrip()[:1] == b"{":
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
            raise XMLRejected("envelope is not JSON") from exc
        value = (envelope.get("encrypt") or envelope.get("Encrypt")) if isinstance(envelope, dict) else None
    else:
        value = parse_fields(body).get("Encrypt")
    if not isinstance(value, str) or not value.strip():
        raise XMLRejected("envelope has no Encrypt")
    return value.strip()


def parse_app_plaintext(plaintext: str, now: dt.datetime) -> IncomingMessage | None:
    fields = json_fields(plaintext) if plaintext.lstrip().startswith("{") else parse_fields(plaintext)
    return parse_app_message(fields, now)


def parse_robot_plaintext(plaintext: str, now: dt.datetime) -> IncomingMessage | None:
    return parse_robot_message(plaintext, now)


def _reject(status: int, reason: str) -> web.Response:
    log.warning("wecom callback rejected (%d): %s", status, reason)
    return web.Response(status=status, text=reason)


def _crypto_status(exc: WeComCryptoError) -> int:
    return 403 if isinstance(exc, InvalidSignature | InvalidReceiveId) else 400


class CallbackEndpoint:
    def __init__(
        self,
        name: str,
        crypto: WeComCrypto | None,
        parse: Parser,
        dispatch: Dispatch,
        clock: Clock,
        body_limit: int,
    ) -> None:
        self.name = name
        self._crypto = crypto
        self._parse = parse
        self._dispatch = dispatch
        self._clock = clock
        self._body_limit = body_limit

    async def verify_url(self, request: web.Request) -> web.Response:
        """GET: answer the decrypted echostr as the bare body (WeCom allows 1 s)."""
        if self._crypto is None:
            return _reject(503, f"{self.name} callback is not configured")
        q = raw_query(request)
        if not all(q.get(k) for k in ("msg_signature", "timestamp", "nonce", "echostr")):
            return _reject(400, "missing msg_signature/timestamp/nonce/echostr")
        try:
            plain = self._crypto.verify_url(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
        except WeComCryptoError as exc:
            return _reject(_crypto_status(exc), str(exc))
        return web.Response(body=plain.encode("utf-8"), content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        if self._crypto is None:
            return _reject(503, f"{self.name} callback is not configured")
        body = await read_limited(request, self._body_limit)
        if body is None:
            return _reject(413, "body too large")
        q = raw_query(request)
        if not all(q.get(k) for k in ("msg_signature", "timestamp", "nonce")):
            return _reject(400, "missing msg_signature/timestamp/nonce")
        try:
            encrypt = extract_encrypt(body)
            plain = self._crypto.decrypt_message(q["msg_signature"], q["timestamp"], q["nonce"], encrypt)
            msg = self._parse(plain, self._clock.now())
        except WeComCryptoError as exc:
            return _reject(_crypto_status(exc), str(exc))
        except (XMLRejected, PayloadRejected) as exc:
            return _reject(400, str(exc))
        try:
            if msg is not None and not await self._dispatch(msg):
                return _reject(503, "bot is starting, try again")  # WeCom will redeliver
        except StorageUnavailable:
            return _reject(503, "storage unavailable, try again")  # WeCom redelivers non-200 answers
        return web.Response(status=200, body=b"")
