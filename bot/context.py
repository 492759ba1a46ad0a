"""The one typed argument every handler receives."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.addressing import member_recipient
from bot.db import journal
from bot.db.outbox import enqueue, enqueue_inline
from bot.db.staged import StagedRow
from bot.db.tables import Member
from bot.message import IncomingMessage, MessageFormat, OutgoingMessage, Platform, Recipient
from bot.sections import wecom_settings

if TYPE_CHECKING:
    from bot.routing import Command, Router
    from bot.services import Services

# Run once the handling transaction has committed (and never if it is rolled back).
AfterCommit = Callable[[], Awaitable[None]]
_INLINE_FORMATS = (MessageFormat.TEXT, MessageFormat.MARKDOWN)  # what an acknowledgement can carry


@dataclass
class HandlerContext:
    msg: IncomingMessage
    member: Member | None
    session: AsyncSession
    services: Services
    router: Router
    now: dt.datetime
    text: str  # the message text with any leading @mention removed
    args: str = ""
    command: Command | None = None
    replies: list[OutgoingMessage] = field(default_factory=list)
    after_commit: list[AfterCommit] = field(default_factory=list)
    # KV values the pipeline read for this message before handling it (its dialogue state), key → value
    # (None: absent). Read with the group's others in one round trip; the conversation lock keeps them current.
    kv_read: dict[str, str | None] = field(default_factory=dict)
    # The reply held for the transport's acknowledgement, and its outbox row (see ``InboundResult.inline``).
    inline: tuple[OutgoingMessage, StagedRow] | None = None

    @property
    def in_group(self) -> bool:
        return self.msg.is_group

    def _here(self) -> Recipient:
        if self.msg.is_group:
            return Recipient(self.msg.platform, conversation_id=self.msg.conversation_id)
        return Recipient(self.msg.platform, user_id=self.msg.sender_id)

    def _private(self) -> Recipient:
        return Recipient(self.msg.platform, user_id=self.msg.sender_id)

    def reply(self, text: str, *, private: bool = False, fmt: MessageFormat = MessageFormat.TEXT, **extra: Any) -> None:
        """Answer the sender: in the same chat, or 1:1 when ``private`` (money never goes to groups)."""
        recipient = self._private() if private else self._here()
        mention = (self.msg.sender_id,) if self.msg.is_group and not private else ()
        out = OutgoingMessage(
            recipient=recipient,
            text=text,
            format=fmt,
            mention_user_ids=mention,
            reply_handle=self.msg.reply_handle if recipient == self._here() else {},
            **extra,
        )
        self.replies.append(out)
        if self.inline is None and self.msg.inline_reply and recipient == self._here() and fmt in _INLINE_FORMATS:
            self.inline = (out, enqueue_inline(self.session, out, self.now))
        else:
            enqueue(self.session, out, self.now, reason="reply")

    def reply_image(self, path: Path, *, private: bool = False) -> None:
        """A picture after ``reply``, to the same place. No caption and no @: one send on every platform."""
        recipient = self._private() if private else self._here()
        out = OutgoingMessage(
            recipient=recipient,
            text="",
            format=MessageFormat.IMAGE,
            file_path=str(path),
            file_name=path.name,
            reply_handle=self.msg.reply_handle if recipient == self._here() else {},
        )
        self.replies.append(out)
        enqueue(self.session, out, self.now, reason="reply")

    def images_reach_here(self) -> bool:
        """Whether a picture sent to this chat can arrive. DingTalk and the local chat take images in
        groups and 1:1; a WeCom group only through its configured group robot webhook (the smart robot's
        reply URL carries text only), a WeCom 1:1 chat only through the self-built app."""
        platform = self.msg.platform
        if platform not in self.services.enabled_platforms:
            return False
        if platform is not Platform.WECOM:
            return True
        settings = self.services.settings
        if self.msg.is_group:
            return any(
                g.platform == "wecom" and g.conversation_id == self.msg.conversation_id and g.webhook_url
                for g in settings.groups
            )
        return wecom_settings(settings).app_configured

    def send(self, message: OutgoingMessage, reason: str) -> None:
        enqueue(self.session, message, self.now, reason=reason)

    def send_to_member(self, member: Member, text: str, reason: str) -> bool:
        recipient = member_recipient(member, self.services.enabled_platforms)
        if recipient is None:
            return False
        self.send(OutgoingMessage(recipient=recipient, text=text), reason)
        return True

    def audit(self, action: str, **detail: Any) -> None:
        journal.audit(self.session, self.now, self.member.id if self.member else None, action, **detail)
