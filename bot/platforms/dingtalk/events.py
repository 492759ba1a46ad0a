"""Contact-change events (通讯录事件): HTTP event-subscription crypto and parsing.

The AES/SHA1 envelope (fact sheet §8) is handled by ``dingtalk-sdk``'s ``dingtalk.crypto`` (1.3.8 works on
Python 3.11 with the ``cryptography`` backend). It is synchronous CPU work, so it runs in a worker thread.
The signature is checked here first with a constant-time compare (the SDK uses ``!=``) so forged requests
never reach the decryptor.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dingtalk.crypto import DingTalkCrypto

from bot.errors import SignatureError

CHECK_URL = "check_url"
CONTACT_EVENT_TYPES = frozenset({"user_add_org", "user_leave_org", "user_modify_org"})


@dataclass(frozen=True, slots=True)
class ContactEvent:
    event_type: str  # user_add_org | user_leave_org | user_modify_org
    user_ids: tuple[str, ...]
    event_id: str  # dedupe key: pushes may repeat
    corp_id: str = ""
    time_ms: int = 0


ContactEventHandler = Callable[[ContactEvent], Awaitable[None]]


def event_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


class EventCrypto:
    def __init__(self, token: str, aes_key: str, owner_key: str) -> None:
        self._token = token
        self._crypto = DingTalkCrypto(token, aes_key, owner_key)

    async def decrypt(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> dict[str, Any]:
        """Verify and decrypt one push; raise ``SignatureError`` on any mismatch or garbage."""
        expected = event_signature(self._token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise SignatureError("event msg_signature mismatch")
        try:
            plain = await asyncio.to_thread(
                self._crypto.decrypt_encrypt_str, signature, timestamp, nonce, encrypt
            )
            payload = json.loads(plain) if plain.startswith("{") else {"plain": plain}
        except Exception as exc:  # SDK raises bare/struct/unicode errors on bad input
            raise SignatureError(f"event decryption failed: {type(exc).__name__}") from exc
        if not isinstance(payload, dict):
            raise SignatureError("event payload is not an object")
        return payload

    async def encrypt_text(self, text: str, timestamp_ms: int) -> dict[str, str]:
        """The encrypted response body; DingTalk needs ``success`` encrypted to accept a push."""
        nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
        result = await asyncio.to_thread(self._crypto.encrypt_message, text, nonce, timestamp_ms)
        return {str(k): str(v) for k, v in result.items()}

    async def success(self, timestamp_ms: int) -> dict[str, str]:
        return await self.encrypt_text("success", timestamp_ms)


def _user_ids(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,) if raw else ()
    if isinstance(raw, list):
        return tuple(str(u) for u in raw if u)
    return ()


def _int(raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        return 0


def parse_http_event(payload: Mapping[str, Any]) -> ContactEvent | None:
    """A decrypted HTTP push → ContactEvent; None for check_url and events we do not handle."""
    event_type = str(payload.get("EventType", ""))
    if event_type not in CONTACT_EVENT_TYPES:
        return None
    return ContactEvent(
        event_type=event_type,
        user_ids=_user_ids(payload.get("userId", payload.get("UserId"))),
        event_id=str(payload.get("eventId") or payload.get("BizId") or ""),
        corp_id=str(payload.get("CorpId", "")),
        time_ms=_int(payload.get("timeStamp", payload.get("TimeStamp", payload.get("EventTime", 0)))),
    )


def parse_stream_event(headers: Mapping[str, Any], data: Mapping[str, Any]) -> ContactEvent | None:
    """A Stream EVENT frame (type in headers, user ids in data) → ContactEvent, or None."""
    event_type = str(headers.get("eventType", ""))
    if event_type not in CONTACT_EVENT_TYPES:
        return None
    return ContactEvent(
        event_type=event_type,
        user_ids=_user_ids(data.get("userId", data.get("UserId"))),
        event_id=str(headers.get("eventId") or headers.get("messageId") or ""),
        corp_id=str(headers.get("eventCorpId", "")),
        time_ms=_int(data.get("timeStamp", headers.get("eventBornTime", 0))),
    )
