"""The outbox dispatcher: lease due rows, hand them to each platform in batches, record the outcome.

Delivery is at-least-once: a crash between the platform call and the status update re-sends at most the
rows that were in flight (leased) at that moment, after their lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import OutboxSettings
from bot.db.outbox import claim_due, mark_sent, settle_inline
from bot.db.staged import StagedRow
from bot.db.tables import OutboxMessage
from bot.logs import log_event, outbox_log
from bot.message import OutgoingMessage, Platform
from bot.platforms.base import Delivery, DeliveryStatus, Messenger
from bot.services import Services


class OutboxDispatcher:
    def __init__(self, services: Services, messengers: Mapping[Platform, Messenger], settings: OutboxSettings) -> None:
        self.services = services
        self.messengers = dict(messengers)
        self.settings = settings
        self._wake = asyncio.Event()
        self._stopping = False
        self._skip_locked = not services.settings.is_sqlite

    def notify(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                while await self.drain_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must survive a DB outage
                log_event(outbox_log, "drain_failed", logging.ERROR, error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_seconds)
            self._wake.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def drain_once(self) -> int:
        """Deliver one batch of due rows; returns how many were handled."""
        now = self.services.now()
        lease = dt.timedelta(seconds=self.settings.lease_seconds)
        async with self.services.sessions() as session, session.begin():
            rows = []
            # Each platform gets a round sized for it (WeCom sends 1,000 users per call, DingTalk 20).
            for enabled, messenger in self.messengers.items():
                limit = getattr(messenger, "max_batch", self.settings.batch_size)
                rows += await claim_due(session, now, lease, limit, self._skip_locked, [enabled.value])
            known = [p.value for p in self.messengers]
            rows += await claim_due(session, now, lease, self.settings.batch_size, self._skip_locked, known, exclude=True)
            claimed = [(r.id, r.platform, dict(r.payload), r.attempts) for r in rows]
        if not claimed:
            return 0
        by_platform: dict[str, list[tuple[int, dict[str, object], int]]] = defaultdict(list)
        for row_id, platform_name, payload, attempts in claimed:
            by_platform[platform_name].append((row_id, payload, attempts))
        results = await asyncio.gather(*(self._deliver(p, items) for p, items in by_platform.items()))
        async with self.services.sessions() as session, session.begin():
            for outcome in results:
                await self._record(session, outcome)
        return len(claimed)

    async def _deliver(
        self, platform: str, items: list[tuple[int, dict[str, object], int]]
    ) -> list[tuple[int, int, Delivery]]:
        messenger = self.messengers.get(Platform(platform))
        if messenger is None:
            failed = Delivery(DeliveryStatus.FAILED, f"platform {platform} not enabled")
            return [(row_id, attempts, failed) for row_id, _, attempts in items]
        messages: list[OutgoingMessage] = [OutgoingMessage.from_json(payload) for _, payload, _ in items]
        try:
            deliveries: Sequence[Delivery] = await messenger.deliver(messages)
        except Exception as exc:  # noqa: BLE001 - a platform failure must not lose the batch
            log_event(outbox_log, "deliver_raised", logging.WARNING, platform=platform, error=repr(exc))
            deliveries = [Delivery(DeliveryStatus.RETRY, repr(exc))] * len(messages)
        if len(deliveries) != len(messages):
            deliveries = [Delivery(DeliveryStatus.RETRY, "adapter returned a wrong count")] * len(messages)
        return [(row_id, attempts, d) for (row_id, _, attempts), d in zip(items, deliveries, strict=True)]

    def _backoff(self, attempts: int, hint: float | None) -> float:
        base = self.settings.base_backoff_seconds * (2 ** max(0, attempts - 1))
        delay = min(self.settings.max_backoff_seconds, base) * (0.8 + 0.4 * random.random())
        return float(max(delay, hint or 0.0))

    async def _record(self, session: AsyncSession, outcome: list[tuple[int, int, Delivery]]) -> None:
        now = self.services.now()
        metrics = self.services.metrics
        sent = [row_id for row_id, _, d in outcome if d.status is DeliveryStatus.SENT]
        await mark_sent(session, sent, now)
        metrics.inc("dangjian_messages_out_total", len(sent))
        for row_id, attempts, d in outcome:
            if d.status is DeliveryStatus.SENT:
                continue
            give_up = d.status is DeliveryStatus.FAILED or attempts >= self.settings.max_attempts
            values: dict[str, object] = {"last_error": d.detail[:2000], "lease_until": None}
            if give_up:
                values["status"] = "failed"
                metrics.inc("dangjian_outbox_failures_total")
                log_event(outbox_log, "failed", logging.WARNING, outbox_id=row_id, attempts=attempts, error=d.detail)
            else:
                values["status"] = "pending"
                values["next_attempt_at"] = now + dt.timedelta(seconds=self._backoff(attempts, d.retry_after))
                metrics.inc("dangjian_outbox_retries_total")
            await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))


SETTLE_WINDOW_S = 0.1


class InlineReplies:
    """Settles replies held for inline answers: one transaction for every callback that answered (or gave
    up) within ``SETTLE_WINDOW_S``. Nothing waits for it (the reply is out, or the hold keeps it safe), so
    under light load it is one transaction per window rather than one per message.

    If that transaction fails, the held rows stay held and the dispatcher sends them after the hold: a
    reply that did go out inline may then arrive twice (at least once, as everywhere in the outbox).
    """

    def __init__(self, services: Services, on_released: Callable[[], None]) -> None:
        self._services = services
        self._on_released = on_released
        self._queued: list[tuple[StagedRow, bool]] = []
        self._settling: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False  # the timer fires on the next loop turn (a released row is waiting)

    def settle(self, row: StagedRow, delivered: bool) -> None:
        if row.id is None:  # never written (its transaction rolled back): nothing to settle
            return
        self._queued.append((row, delivered))
        # Released rows are due now: settle on the next turn; sent ones can wait for company.
        if self._timer is not None and (delivered or self._soon):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._soon = not delivered
        self._timer = asyncio.get_running_loop().call_later(0.0 if self._soon else SETTLE_WINDOW_S, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._soon = False
        batch, self._queued = self._queued, []
        if not batch:
            return
        task = asyncio.create_task(self._settle(batch), name="outbox-inline-settle")
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, batch: list[tuple[StagedRow, bool]]) -> None:
        sent = [row.id for row, delivered in batch if delivered and row.id is not None]
        released = [row.id for row, delivered in batch if not delivered and row.id is not None]
        metrics = self._services.metrics
        try:
            async with self._services.sessions() as session, session.begin():
                await settle_inline(session, sent, released, self._services.now())
        except Exception as exc:  # noqa: BLE001 - the hold expires and the dispatcher takes over
            log_event(outbox_log, "inline_settle_failed", logging.WARNING, rows=len(batch), error=str(exc))
            return
        metrics.inc("dangjian_replies_inline_total", len(sent), result="sent")
        metrics.inc("dangjian_replies_inline_total", len(released), result="released")
        if released:
            self._on_released()

    async def drain(self) -> None:
        """Settle what is queued now and wait for every settlement in progress (shutdown, tests)."""
        if self._queued:
            self._start()  # now, not at the end of the window
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
