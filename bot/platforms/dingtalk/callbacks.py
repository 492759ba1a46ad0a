"""HTTP routes: ``POST /dingtalk/callback`` (robot messages, HTTP mode) and ``POST /dingtalk/events``
(contact events over HTTP event subscription).

The robot callback checks the ``timestamp``/``sign`` headers before the body is read, so forged requests
cost us nothing and never reach the parser. The message is handled in a background task; the callback
waits for it at most ``ACK_WAIT_S`` and answers with the message's first reply to its chat as the
response body (DingTalk posts it: no API call, ``inline_replies``) or ``{"msgtype":"empty"}`` (slower
handling finishes after the ack), or 503 when the core could not store it (database down) so that
DingTalk redelivers the push. Other replies go out through the session webhook / robot API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

from aiohttp import web

from bot.errors import SignatureError
from bot.platforms.base import InboundResult, InlineReply
from bot.platforms.dingtalk.events import EventCrypto, parse_http_event
from bot.platforms.dingtalk.inbound import Handoff, Inbound
from bot.platforms.dingtalk.parse import QuotaPushError, parse_robot_json
from bot.platforms.dingtalk.payloads import webhook_bodies
from bot.platforms.dingtalk.settings import DingTalkSettings
from bot.platforms.dingtalk.sign import verify_callback

log = logging.getLogger("bot.platforms.dingtalk")

MAX_BODY_BYTES = 64 * 1024  # a robot message is a few KB; anything near this is not DingTalk
CALLBACK_PATH = "/dingtalk/callback"
EVENTS_PATH = "/dingtalk/events"
EMPTY_REPLY = {"msgtype": "empty"}
ACK_WAIT_S = 3.0  # well inside DingTalk's wait for an answer; a normal message is handled in milliseconds


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"errcode": status, "errmsg": message}, status=status)


async def _read_limited(request: web.Request) -> bytes | None:
    """The body, or None when it exceeds the limit (checked before and while reading)."""
    if request.content_length is not None:
        if request.content_length > MAX_BODY_BYTES:
            return None
        return await request.read()  # the declared length, read at once (no chunk loop)
    body = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


async def _answer_inline(request: web.Request, reply: InlineReply) -> web.StreamResponse:
    """The reply as the callback's response body (DingTalk posts it to the chat), then settled.

    Written here rather than returned, so that it is settled as sent only once the response is out."""
    bodies = webhook_bodies(reply.message, list(reply.message.mention_user_ids))
    if len(bodies) != 1:  # a long text takes several messages: all go out through the outbox
        reply.settle(False)
        return web.json_response(EMPTY_REPLY)
    response = web.json_response(bodies[0])
    try:
        await response.prepare(request)
        await response.write_eof()
    except BaseException:
        reply.settle(False)
        raise
    reply.settle(True)
    return response


def _release_inline(handling: asyncio.Task[InboundResult | None]) -> None:
    if handling.cancelled() or handling.exception() is not None:
        return
    result = handling.result()
    if result is not None and result.inline is not None:
        result.inline.settle(False)


class CallbackRoutes:
    def __init__(self, settings: DingTalkSettings, inbound: Inbound, crypto: EventCrypto | None) -> None:
        self._settings = settings
        self._inbound = inbound
        self._crypto = crypto

    def routes(self) -> list[web.RouteDef]:
        routes: list[web.RouteDef] = []
        if self._settings.mode == "http":
            routes.append(web.post(CALLBACK_PATH, self.robot_callback))
        if self._crypto is not None:
            routes.append(web.post(EVENTS_PATH, self.event_callback))
        return routes

    def _now_ms(self) -> int:
        return int(self._inbound.now().timestamp() * 1000)

    async def robot_callback(self, request: web.Request) -> web.StreamResponse:
        try:
            verify_callback(
                request.headers.get("timestamp", ""), request.headers.get("sign", ""),
                self._settings.app_secret, self._now_ms(), int(self._settings.callback_window_s * 1000),
            )
        except SignatureError as exc:
            log.warning("dingtalk callback rejected from %s: %s", request.remote, exc)
            return _error(401, "invalid signature")
        if self._inbound.sink is None:
            return _error(503, "not ready")
        raw = await _read_limited(request)
        if raw is None:
            return _error(413, "body too large")
        try:
            msg = parse_robot_json(raw, self._inbound.now())
        except QuotaPushError as exc:
            self._inbound.quota_push(exc)
            return web.json_response(EMPTY_REPLY)
        except ValueError as exc:
            log.warning("malformed dingtalk callback: %s", exc)
            return _error(400, "malformed message")
        if self._settings.inline_replies:
            msg = dataclasses.replace(msg, inline_reply=True)
        handoff = Handoff()
        handling = self._inbound.accept(msg, handoff)
        done, _ = await asyncio.wait({handling}, timeout=ACK_WAIT_S)
        if handling in done and not handling.cancelled() and handling.exception() is None:
            result = handling.result()
            if result is None:
                return _error(503, "storage unavailable, please retry")
            if result.inline is not None:
                return await _answer_inline(request, result.inline)
            return web.json_response(EMPTY_REPLY)
        handoff.acked = True  # still running: acknowledged now, so it retries storage trouble by itself
        handling.add_done_callback(_release_inline)  # its held reply goes out through the outbox instead
        return web.json_response(EMPTY_REPLY)

    async def event_callback(self, request: web.Request) -> web.Response:
        assert self._crypto is not None
        query = request.query
        signature = query.get("msg_signature") or query.get("signature", "")
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not (signature and timestamp and nonce):
            return _error(401, "missing signature")
        raw = await _read_limited(request)
        if raw is None:
            return _error(413, "body too large")
        try:
            encrypt = json.loads(raw)["encrypt"]
            if not isinstance(encrypt, str):
                raise TypeError("encrypt is not a string")
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: deeply nested JSON
            return _error(400, "malformed event")
        try:
            payload = await self._crypto.decrypt(signature, timestamp, nonce, encrypt)
        except SignatureError as exc:
            log.warning("dingtalk event rejected: %s", exc)
            return _error(401, "invalid signature")
        event = parse_http_event(payload)
        if event is not None:
            self._inbound.spawn_event(event)
        # check_url and every other event need the encrypted "success", or DingTalk redelivers.
        return web.json_response(await self._crypto.success(self._now_ms()))
