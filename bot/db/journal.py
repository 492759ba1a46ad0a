"""Inbound log (dedup of record), audit log and the local chat transcript."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.tables import AuditEntry, InboundMessage, LocalChatLine
from bot.message import IncomingMessage


async def seen_inbound(session: AsyncSession, msg: IncomingMessage) -> bool:
    stmt = select(InboundMessage.id).where(
        InboundMessage.platform == msg.platform.value, InboundMessage.message_id == msg.message_id
    )
    return (await session.execute(stmt)).first() is not None


# Core, on the table: the ORM bulk form splits rows by which columns are None (one INSERT per shape).
_INSERT_INBOUND = insert(cast(Table, InboundMessage.__table__))


async def log_inbound(session: AsyncSession, msg: IncomingMessage, member_id: int | None) -> None:
    """Written at once in the handling transaction: the unique (platform, message_id) makes a replay fail
    here, before any handler work. A Core INSERT, not an ORM object: it is on every message's path."""
    await log_inbound_many(session, [(msg, member_id)])


def _inbound_row(msg: IncomingMessage, member_id: int | None) -> dict[str, Any]:
    return {
        "platform": msg.platform.value,
        "message_id": msg.message_id,
        "conversation_id": msg.conversation_id,
        "sender_id": msg.sender_id,
        "member_id": member_id,
        "text": msg.text[:4000],
        "received_at": msg.received_at,
    }


async def log_inbound_many(session: AsyncSession, messages: Sequence[tuple[IncomingMessage, int | None]]) -> None:
    """``log_inbound`` for a group of messages in one statement (a duplicate fails the whole group)."""
    rows = [_inbound_row(msg, member_id) for msg, member_id in messages]
    # On the session's connection: a plain table INSERT needs none of Session.execute's ORM work.
    await (await session.connection()).execute(_INSERT_INBOUND, rows)


def audit(session: AsyncSession, at: dt.datetime, actor_id: int | None, action: str, **detail: Any) -> None:
    session.add(AuditEntry(at=at, actor_member_id=actor_id, action=action, detail=detail))


async def append_chat_line(
    session: AsyncSession,
    conversation_id: str,
    sender_id: str,
    text: str,
    at: dt.datetime,
    message_id: str | None = None,
) -> LocalChatLine:
    line = LocalChatLine(conversation_id=conversation_id, sender_id=sender_id, text=text, at=at, message_id=message_id)
    session.add(line)
    await session.flush()
    return line


async def chat_lines_after(session: AsyncSession, conversation_id: str, after: int, limit: int = 500) -> list[LocalChatLine]:
    stmt = (
        select(LocalChatLine)
        .where(LocalChatLine.conversation_id == conversation_id, LocalChatLine.seq > after)
        .order_by(LocalChatLine.seq)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())
