"""DingTalk robot message JSON (fact sheet §2.1; same body in HTTP mode and Stream ``data``) → IncomingMessage.

Conversation ids: a group keeps DingTalk's ``conversationId`` (the ``openConversationId`` the send APIs
take). A 1:1 chat becomes ``dm:<senderStaffId>``: stable per user, matches the local platform's ``dm:``
convention, and lets the adapter send to it with ``oToMessages/batchSend`` (DingTalk's own 1:1
conversationId cannot be used with any send API).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from bot.errors import BotError
from bot.message import ConversationKind, IncomingMessage, Platform

DIRECT_PREFIX = "dm:"
QUOTA_PUSH_CODE = "20001"
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\S+)*\s*")  # "@机器人 /stats" typed as plain text


class QuotaPushError(BotError):
    """The org's monthly Webhook&Stream quota is exhausted: the push arrived without its content (20001)."""

    def __init__(self, message_id: str, detail: str) -> None:
        super().__init__(f"DingTalk push quota exhausted (20001): {detail}")
        self.message_id = message_id
        self.detail = detail


def direct_conversation_id(user_id: str) -> str:
    return f"{DIRECT_PREFIX}{user_id}"


def user_from_direct_conversation(conversation_id: str) -> str:
    """The user id of a ``dm:`` conversation, or "" for a group conversation id."""
    return conversation_id[len(DIRECT_PREFIX) :] if conversation_id.startswith(DIRECT_PREFIX) else ""


def parse_robot_json(raw: bytes, now: dt.datetime) -> IncomingMessage:
    """Bytes of a callback body → IncomingMessage; ValueError when it is not a robot message."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: [[[[…
        raise ValueError(f"body is not JSON: {exc!r}"[:200]) from exc
    if not isinstance(body, dict):
        raise ValueError("body is not a JSON object")
    return parse_robot_message(body, now)


def parse_robot_message(body: Mapping[str, Any], now: dt.datetime) -> IncomingMessage:
    message_id = _required(body, "msgId")
    _raise_if_quota_push(body, message_id)
    kind = _kind(body.get("conversationType"))
    sender_id = _str(body.get("senderStaffId")) or _str(body.get("senderId"))
    if not sender_id:
        raise ValueError("message has neither senderStaffId nor senderId")
    if kind is ConversationKind.DIRECT:
        conversation_id = direct_conversation_id(sender_id)
    else:
        conversation_id = _required(body, "conversationId")
    return IncomingMessage(
        platform=Platform.DINGTALK,
        conversation_id=conversation_id,
        conversation_kind=kind,
        sender_id=sender_id,
        text=_text(body),
        message_id=message_id,
        received_at=_received_at(body.get("createAt"), now),
        sender_name=_str(body.get("senderNick")),
        mentions=_mentions(body.get("atUsers")),
        is_to_me=kind is ConversationKind.DIRECT or body.get("isInAtList") is True,
        reply_handle=_reply_handle(body),
    )


def _str(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _required(body: Mapping[str, Any], key: str) -> str:
    value = _str(body.get(key))
    if not value:
        raise ValueError(f"missing {key}")
    return value


def _kind(raw: object) -> ConversationKind:
    value = str(raw) if isinstance(raw, str | int) else ""
    if value == "1":
        return ConversationKind.DIRECT
    if value == "2":
        return ConversationKind.GROUP
    raise ValueError(f"unknown conversationType {raw!r}")


def _text(body: Mapping[str, Any]) -> str:
    """text.content first, then a string ``content`` (HTTP sample variant); other msgtypes give ""."""
    text = body.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    if not isinstance(content, str):
        content = body.get("content")
    if not isinstance(content, str):
        return ""
    return _LEADING_MENTIONS.sub("", content, count=1).rstrip()


def _raise_if_quota_push(body: Mapping[str, Any], message_id: str) -> None:
    if isinstance(body.get("text"), dict) or "content" in body:
        return
    for key in ("errorCode", "errcode", "errCode", "code", "errorMessage", "errMsg", "errmsg"):
        value = body.get(key)
        if value is not None and QUOTA_PUSH_CODE in str(value):
            raise QuotaPushError(message_id, str(body.get("errorMessage") or body.get("errMsg") or value))


def _received_at(raw: object, now: dt.datetime) -> dt.datetime:
    if isinstance(raw, bool) or raw is None or raw == "":
        return now.astimezone(dt.UTC)
    try:
        ms = int(raw) if isinstance(raw, float) else int(str(raw).strip())
    except ValueError as exc:
        raise ValueError(f"bad createAt {raw!r}") from exc
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _mentions(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    # staffId is empty for the robot itself and for external users: nothing to address them by.
    return tuple(s for u in raw if isinstance(u, dict) and (s := _str(u.get("staffId"))))


def _reply_handle(body: Mapping[str, Any]) -> dict[str, str]:
    url = _str(body.get("sessionWebhook"))
    if not url:
        return {}
    expires = body.get("sessionWebhookExpiredTime")
    return {
        "session_webhook": url,
        "session_webhook_expires_ms": str(expires) if isinstance(expires, int | str) else "0",
        "sender_staff_id": _str(body.get("senderStaffId")),  # to @ the asker in a group reply
    }
