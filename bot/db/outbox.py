"""Outbox rows: written in the caller's transaction, claimed and updated by the dispatcher."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.staged import StagedRow, stage
from bot.db.tables import OutboxMessage
from bot.message import OutgoingMessage

_OUTBOX = cast(Table, OutboxMessage.__table__)
# How long a reply held for an inline answer waits for ``settle_inline`` before the dispatcher sends it
# itself (the bot stopped between its commit and the acknowledgement). Well above the callback's wait.
INLINE_HOLD = dt.timedelta(seconds=30)


def _row(message: OutgoingMessage, now: dt.datetime, reason: str) -> dict[str, object]:
    return {
        "platform": message.recipient.platform.value,
        "payload": message.to_json(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "reason": reason,
        "created_at": now,
    }


_SENDS = "outbox_sends"  # session.info: this transaction queued a message for the dispatcher


def enqueue(session: AsyncSession, message: OutgoingMessage, now: dt.datetime, reason: str = "reply") -> None:
    """The message goes out once this transaction commits (written with the next statement or the commit,
    see bot.db.staged)."""
    stage(session, _OUTBOX, _row(message, now, reason))
    session.info[_SENDS] = True


def sends_staged(session: AsyncSession) -> bool:
    """Whether this transaction queued a message the dispatcher must send (replies held for an inline
    answer do not count: waking the dispatcher for them would be a round of queries for nothing)."""
    return bool(session.info.get(_SENDS))


def enqueue_inline(session: AsyncSession, message: OutgoingMessage, now: dt.datetime) -> StagedRow:
    """A reply held for the platform's acknowledgement (status ``inline``); ``settle_inline`` marks it sent
    or hands it to the dispatcher. Its id is known once written."""
    row = _row(message, now, "reply") | {"status": "inline", "next_attempt_at": now + INLINE_HOLD}
    return stage(session, _OUTBOX, row, returns_id=True)


async def settle_inline(session: AsyncSession, sent: Sequence[int], released: Sequence[int], now: dt.datetime) -> None:
    """Held replies: ``sent`` went out in the acknowledgement; ``released`` are due for the dispatcher now."""
    held = OutboxMessage.status == "inline"
    if sent:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(list(sent)), held)
                              .values(status="sent", sent_at=now, attempts=1))
    if released:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(list(released)), held)
                              .values(status="pending", next_attempt_at=now))


async def claim_due(
    session: AsyncSession,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int,
    skip_locked: bool,
    platforms: Sequence[str] | None = None,
    exclude: bool = False,
) -> list[OutboxMessage]:
    """Lease due rows (pending, sending with an expired lease after a crash, or held for an inline answer
    past the hold) to this instance.

    ``platforms`` narrows the claim to those platforms (or, with ``exclude``, to every other one).
    """
    due = or_(
        (OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now),
        (OutboxMessage.status == "sending") & (OutboxMessage.lease_until < now),
        (OutboxMessage.status == "inline") & (OutboxMessage.next_attempt_at <= now),  # never settled
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
