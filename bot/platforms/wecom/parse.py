"""Decrypted WeCom callbacks → ``IncomingMessage`` (or ``None`` for what the bot ignores).

Conversation ids: a member's 1:1 chat with the app (or with the smart robot) is their **userid**, so
``Recipient(user_id=u)`` and ``Recipient(conversation_id=u)`` reach the same person; a smart-robot
group is its ``chatid``. Message ids: ``"<AgentID>:<MsgId>"`` for app messages (MsgId is unique
per app), the robot's ``msgid`` for robot messages. Both stay identical when WeCom redelivers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from bot.message import ConversationKind, IncomingMessage, Platform

# A response_url may be used once within an hour; keep a margin for queueing in the outbox.
RESPONSE_URL_TTL = dt.timedelta(minutes=55)
_LEADING_MENTION = re.compile(r"^\s*@\S+\s*")


class PayloadRejected(ValueError):
    """The decrypted payload is not a shape WeCom sends."""


def _timestamp(value: str, fallback: dt.datetime) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback


def _app_text(fields: Mapping[str, str]) -> str | None:
    kind = fields.get("MsgType", "")
    if kind == "text":
        return fields.get("Content", "")
    if kind == "voice" and fields.get("Recognition"):
        return fields["Recognition"]  # speech-to-text, when enabled for the app
    return None  # events (enter_agent, subscribe, clicks…) and media are not chat replies


def parse_app_message(fields: Mapping[str, str], now: dt.datetime) -> IncomingMessage | None:
    """App callback plaintext (already a flat dict) → a direct message from ``FromUserName``."""
    text = _app_text(fields)
    if text is None:
        return None
    sender = fields.get("FromUserName", "").strip()
    msg_id = fields.get("MsgId", "").strip()
    if not sender or not msg_id:
        raise PayloadRejected("text message without FromUserName or MsgId")
    return IncomingMessage(
        platform=Platform.WECOM,
        conversation_id=sender,
        conversation_kind=ConversationKind.DIRECT,
        sender_id=sender,
        text=text.strip(),
        message_id=f"{fields.get('AgentID', '').strip()}:{msg_id}",
        received_at=_timestamp(fields.get("CreateTime", ""), now),
    )


def json_fields(plaintext: str) -> dict[str, str]:
    """A JSON-flavoured app callback plaintext as the same flat dict the XML parser yields."""
    data = _load_object(plaintext)
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str | int)}


def _load_object(plaintext: str) -> dict[str, Any]:
    try:
        data = json.loads(plaintext)
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
        raise PayloadRejected("not JSON") from exc
    if not isinstance(data, dict):
        raise PayloadRejected("JSON payload is not an object")
    return data


def _text_of(data: Mapping[str, Any]) -> str:
    content = (data.get("text") or {}).get("content")
    return content if isinstance(content, str) else ""


def _mixed_text(data: Mapping[str, Any]) -> str:
    items = (data.get("mixed") or {}).get("msg_item") or []
    return "\n".join(_text_of(i) for i in items if isinstance(i, dict) and i.get("msgtype") == "text")


def _voice_text(data: Mapping[str, Any]) -> str:
    content = (data.get("voice") or {}).get("content")
    return content if isinstance(content, str) else ""


_ROBOT_TEXT: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "text": _text_of,
    "mixed": _mixed_text,
    "voice": _voice_text,  # transcribed by WeCom (single chat only)
}


def parse_robot_message(plaintext: str, now: dt.datetime) -> IncomingMessage | None:
    """Smart-robot callback JSON → message; stream refreshes, events, images, files → None."""
    data = _load_object(plaintext)
    extract = _ROBOT_TEXT.get(str(data.get("msgtype", "")))
    if extract is None:
        return None
    try:
        return _robot_message(data, extract(data), now)
    except (AttributeError, TypeError) as exc:
        raise PayloadRejected("unexpected robot callback shape") from exc


def _robot_message(data: Mapping[str, Any], text: str, now: dt.datetime) -> IncomingMessage:
    sender = str((data.get("from") or {}).get("userid") or "")
    msg_id = str(data.get("msgid") or "")
    if not sender or not msg_id:
        raise PayloadRejected("robot message without from.userid or msgid")
    group = data.get("chattype") == "group"
    if group:
        text = _LEADING_MENTION.sub("", text, count=1)  # "@党建助手 已学习" → "已学习"
    chat_id = str(data.get("chatid") or "")
    if group and not chat_id:
        raise PayloadRejected("group robot message without chatid")
    handle = {"chattype": "group" if group else "single"}
    response_url = data.get("response_url")
    if isinstance(response_url, str) and response_url:
        handle["response_url"] = response_url
        handle["response_url_expires"] = str(int((now + RESPONSE_URL_TTL).timestamp()))
    return IncomingMessage(
        platform=Platform.WECOM,
        conversation_id=chat_id if group else sender,
        conversation_kind=ConversationKind.GROUP if group else ConversationKind.DIRECT,
        sender_id=sender,
        text=text.strip(),
        message_id=msg_id,
        received_at=now,
        is_to_me=True,  # the robot only hears group messages that @-mention it
        reply_handle=handle,
    )
