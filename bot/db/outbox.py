"""Outbox rows: written in the caller's transaction, claimed and updated by the dispatcher."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.staged import stage
from bot.db.tables import OutboxMessage
from bot.message import OutgoingMessage

_OUTBOX = cast(Table, OutboxMessage.__table__)


def enqueue(session: AsyncSession, message: OutgoingMessage, now: dt.datetime, reason: str = "reply") -> None:
    """The message goes out once this transaction commits (written at the commit, see bot.db.staged)."""
    stage(session, _OUTBOX, {
        "platform": message.recipient.platform.value,
        "payload": message.to_json(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "reason": reason,
        "created_at": now,
    })


async def claim_due(
    session: AsyncSession,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int,
    skip_locked: bool,
    platforms: Sequence[str] | None = None,
    exclude: bool = False,
) -> list[OutboxMessage]:
    """Lease due rows (pending, or sending with an expired lease after a crash) to this instance.

    ``platforms`` narrows the claim to those platforms (or, with ``exclude``, to every other one).
    """
    due = or_(
        (OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now),
        (OutboxMessage.status == "sending") & (OutboxMessage.lease_until < now),
    )
    stmt = select(OutboxMessage).where(due).order_by(OutboxMessage.id).limit(limit)
    if platforms is not None:
        column = OutboxMessage.platform
        stmt = stmt.where(column.notin_(list(platforms)) if exclude else column.in_(list(platforms)))
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list((await session.execute(stmt)).scalars().all())
    for row in rows:
        row.status = "sending"
        row.lease_until = now + lease
        row.attempts += 1
    return rows


async def mark_sent(session: AsyncSession, ids: Sequence[int], now: dt.datetime) -> None:
    if ids:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(list(ids))).values(status="sent", sent_at=now, lease_until=None)
        )


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
    return {status: int(n) for status, n in rows.all()}
