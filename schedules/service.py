"""APScheduler (3.x, Asia/Shanghai) wrapped in one small service.

The database claims are the source of truth; APScheduler only wakes the runner at the next due time
(one date job, re-armed after every run) plus a periodic safety tick. Nothing is pickled into a job store.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import Clock
from bot.logs import log_event, scheduler_log
from schedules.runner import RunReport, ScheduleRunner

SAFETY_TICK = dt.timedelta(minutes=10)


class SchedulerService:
    def __init__(self, runner: ScheduleRunner, clock: Clock, timezone: dt.tzinfo) -> None:
        self.runner = runner
        self.clock = clock
        self._scheduler = AsyncIOScheduler(timezone=timezone)
        self.next_due: dt.datetime | None = None

    async def start(self) -> RunReport:
        self._scheduler.start()
        self._scheduler.add_job(
            self.tick, IntervalTrigger(seconds=SAFETY_TICK.total_seconds()), id="safety", coalesce=True, max_instances=1
        )
        return await self.tick()  # catch up what was missed while the bot was down

    async def tick(self) -> RunReport:
        now = self.clock.now()
        try:
            report = await self.runner.run_due(now)
        except Exception as exc:  # noqa: BLE001 - a DB outage must not kill the scheduler
            log_event(scheduler_log, "tick_failed", logging.ERROR, error=repr(exc))
            report = RunReport()
        self._arm(now)
        return report

    def _arm(self, now: dt.datetime) -> None:
        self.next_due = self.runner.next_due(now)
        if self.next_due is None:
            return
        self._scheduler.add_job(
            self.tick,
            DateTrigger(run_date=self.next_due),
            id="next",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )
        log_event(scheduler_log, "armed", next_due=self.next_due.isoformat())

    async def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
