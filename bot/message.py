"""The normalized message model at the platform boundary.

Platforms turn their JSON/XML into ``IncomingMessage`` and send ``OutgoingMessage``; nothing past the
adapter sees a platform's wire format.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field


class Platform(enum.StrEnum):
    LOCAL = "local"
    DINGTALK = "dingtalk"
    WECOM = "wecom"


class ConversationKind(enum.StrEnum):
    DIRECT = "direct"  # 1:1 with the bot
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    platform: Platform
    conversation_id: str
    conversation_kind: ConversationKind
    sender_id: str  # platform user id (local: mobile or name)
    text: str
    message_id: str  # platform message id, the dedup key
    received_at: dt.datetime
    sender_name: str = ""
    mentions: tuple[str, ...] = ()
    is_to_me: bool = True  # in groups: the bot was @-mentioned
    # Platform reply handle (e.g. DingTalk sessionWebhook + expiry); opaque outside the platform.
    reply_handle: dict[str, str] = field(default_factory=dict)
    # The transport can carry one text reply in its acknowledgement (a DingTalk HTTP callback's response):
    # the first reply to this chat is then held for it instead of being sent (``InboundResult.inline``).
    inline_reply: bool = False

    @property
    def is_group(self) -> bool:
        return self.conversation_kind is ConversationKind.GROUP


class MessageFormat(enum.StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    FILE = "file"
    IMAGE = "image"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where an outgoing message goes: a conversation or one user (1:1)."""

    platform: Platform
    conversation_id: str = ""  # group/conversation target
    user_id: str = ""  # direct target (platform user id)

    def __post_init__(self) -> None:
        if bool(self.conversation_id) == bool(self.user_id):
            raise ValueError("Recipient needs exactly one of conversation_id or user_id")

    @property
    def is_direct(self) -> bool:
        return bool(self.user_id)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    recipient: Recipient
    text: str
    format: MessageFormat = MessageFormat.TEXT
    title: str = ""
    mention_user_ids: tuple[str, ...] = ()  # platform user ids to @ where the platform allows
    file_path: str = ""  # for FILE/IMAGE: path of a file on local disk
    file_name: str = ""
    reply_handle: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "platform": self.recipient.platform.value,
            "conversation_id": self.recipient.conversation_id,
            "user_id": self.recipient.user_id,
            "text": self.text,
            "format": self.format.value,
            "title": self.title,
            "mention_user_ids": list(self.mention_user_ids),
            "file_path": self.file_path,
            "file_name": self.file_name,
            "reply_handle": dict(self.reply_handle),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> OutgoingMessage:
        mentions = data.get("mention_user_ids") or []
        handle = data.get("reply_handle") or {}
        assert isinstance(mentions, list) and isinstance(handle, dict)
        return cls(
            recipient=Recipient(
                platform=Platform(str(data["platform"])),
                conversation_id=str(data.get("conversation_id") or ""),
                user_id=str(data.get("user_id") or ""),
            ),
            text=str(data.get("text") or ""),
            format=MessageFormat(str(data.get("format") or "text")),
            title=str(data.get("title") or ""),
            mention_user_ids=tuple(str(m) for m in mentions),
            file_path=str(data.get("file_path") or ""),
            file_name=str(data.get("file_name") or ""),
            reply_handle={str(k): str(v) for k, v in handle.items()},
        )
