"""Run scheduled events exactly once: claim (schedule, period, kind, offset, org) in the database in the
same transaction as the campaign rows and outbox messages the event produces.

Two instances racing for one event both try to insert the claim; the unique key lets one commit, the
other's transaction rolls back whole. Missed events are caught up within the grace window and recorded
as skipped after it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.campaigns import open_campaign
from bot.db.tables import Campaign, OccurrenceClaim, Org
from bot.logs import log_event, scheduler_log
from bot.services import Services
from schedules import actions
from schedules.audience import target_orgs
from schedules.models import ScheduleSpec
from schedules.plan import Occurrence, PlannedEvent, plan_many


@dataclass
class RunReport:
    executed: list[str] = field(default_factory=list)  # claim keys this instance ran
    skipped_late: list[str] = field(default_factory=list)
    already_claimed: int = 0


def claim_key(occ: Occurrence, event: PlannedEvent, org_id: int | None) -> str:
    scope = str(org_id) if org_id is not None else "all"
    return "|".join((occ.schedule_key, occ.period_label, event.kind, event.offset, scope))


class ScheduleRunner:
    def __init__(self, services: Services, on_commit: Callable[[], None], instance: str = "") -> None:
        self.services = services
        self._on_commit = on_commit
        self.instance = instance
        self._specs = {s.key: s for s in services.schedules}

    def plan_window(self, start: dt.datetime, end: dt.datetime) -> list[tuple[Occurrence, PlannedEvent]]:
        tz = self.services.tz
        plan = plan_many(
            self._specs.values(), start.astimezone(tz).date() - dt.timedelta(days=1), end.astimezone(tz).date(),
            self.services.calendar,
        )
        pairs = plan.timeline()
        # Campaigns must open at open_at even when nothing is announced (e.g. daily work logs).
        pairs += [(o, PlannedEvent("open", o.open_at)) for o in plan.occurrences if not any(e.kind == "announce" for e in o.events)]
        pairs.sort(key=lambda pair: (pair[1].due_at, pair[0].schedule_key))
        return [(o, e) for o, e in pairs if start < e.due_at <= end]

    def next_due(self, now: dt.datetime, horizon_days: int = 40) -> dt.datetime | None:
        upcoming = self.plan_window(now, now + dt.timedelta(days=horizon_days))
        return upcoming[0][1].due_at if upcoming else None

    async def run_due(self, now: dt.datetime) -> RunReport:
        """Run every event due in (now - grace - 1 day, now]; those older than the grace window are
        claimed as skipped (so they are reported once, not retried)."""
        grace = dt.timedelta(minutes=self.services.settings.scheduler.grace_minutes)
        report = RunReport()
        for occ, event in self.plan_window(now - grace - dt.timedelta(days=1), now):
            late = now - event.due_at > grace
            await self._run_event(occ, event, now, late, report)
        if report.executed:
            self._on_commit()
        return report

    async def _run_event(
        self, occ: Occurrence, event: PlannedEvent, now: dt.datetime, late: bool, report: RunReport
    ) -> None:
        spec = self._specs[occ.schedule_key]
        async with self.services.sessions() as session:
            orgs = await target_orgs(session, spec)
        if event.kind == "escalate_committee":

            async def committee(session: AsyncSession) -> None:
                await self._committee(session, spec, occ, orgs, now)

            await self._claimed(None, occ, event, now, late, report, committee)
            return
        for org in orgs:

            async def branch(session: AsyncSession, org: Org = org) -> None:
                await self._branch_event(session, spec, occ, event, org, now)

            await self._claimed(org.id, occ, event, now, late, report, branch)

    async def _claimed(
        self,
        org_id: int | None,
        occ: Occurrence,
        event: PlannedEvent,
        now: dt.datetime,
        late: bool,
        report: RunReport,
        effect: Callable[[AsyncSession], Awaitable[None]],
    ) -> None:
        key = claim_key(occ, event, org_id)
        try:
            async with self.services.sessions() as session, session.begin():
                session.add(
                    OccurrenceClaim(
                        key=key,
                        schedule_key=occ.schedule_key,
                        period=occ.period_label,
                        kind=event.kind,
                        due_at=event.due_at,
                        claimed_at=now,
                        instance=self.instance,
                        status="skipped_late" if late else "done",
                    )
                )
                await session.flush()
                if not late:
                    await effect(session)
        except IntegrityError:
            report.already_claimed += 1
            return
        if late:
            report.skipped_late.append(key)
            log_event(scheduler_log, "skipped_late", logging.WARNING, key=key, due_at=event.due_at.isoformat())
        else:
            report.executed.append(key)
            lag = (now - event.due_at).total_seconds()
            self.services.metrics.inc("dangjian_scheduler_events_total", kind=event.kind)
            self.services.metrics.inc("dangjian_scheduler_lag_seconds_total", max(lag, 0.0))
            log_event(scheduler_log, "event_run", key=key, lag_s=round(lag, 3))

    async def ensure_campaign(
        self, session: AsyncSession, spec: ScheduleSpec, occ: Occurrence, org: Org
    ) -> Campaign:
        campaign, _ = await open_campaign(
            session,
            form_key=spec.form,
            period=occ.period_label,
            org_id=org.id,
            schedule_key=spec.key,
            title=occ.title or spec.title,
            opened_at=occ.open_at,
            deadline_at=occ.deadline_at,
            audience={"roles": list(spec.audience.roles), "categories": list(spec.audience.categories)},
        )
        return campaign

    async def _branch_event(
        self, session: AsyncSession, spec: ScheduleSpec, occ: Occurrence, event: PlannedEvent, org: Org, now: dt.datetime
    ) -> None:
        campaign = await self.ensure_campaign(session, spec, occ, org)
        handler = actions.BRANCH_ACTIONS[event.kind]
        await handler(actions.ActionContext(self.services, session, spec, occ, event, now), campaign, org)

    async def _committee(
        self, session: AsyncSession, spec: ScheduleSpec, occ: Occurrence, orgs: list[Org], now: dt.datetime
    ) -> None:
        campaigns = [await self.ensure_campaign(session, spec, occ, org) for org in orgs]
        await actions.escalate_committee(self.services, session, spec, occ, campaigns, now)

    async def start_current(self, schedule_key: str, now: dt.datetime, min_days_left: int = 3) -> list[Campaign]:
        """Open and announce the current period's campaign right now (first start, demo).

        If the period's deadline has passed or is too close, it moves to the period's last workday at
        18:00 (or ``min_days_left`` days on), so members have time to answer.
        """
        spec = self._specs.get(schedule_key)
        if spec is None:
            return []
        tz = self.services.tz
        today = now.astimezone(tz).date()
        plan = plan_many([spec], today, today, self.services.calendar)
        current = [o for o in plan.occurrences if o.open_at.astimezone(tz).date() <= today]
        if not current:
            return []
        occ = current[-1]
        if occ.deadline_at - now < dt.timedelta(days=min_days_left):
            occ = replace(occ, deadline_at=self._extended_deadline(now, min_days_left))
        announce = next((e for e in occ.events if e.kind == "announce"), PlannedEvent("announce", occ.open_at))
        report = RunReport()
        async with self.services.sessions() as session:
            orgs = await target_orgs(session, spec)
        campaigns: list[Campaign] = []
        for org in orgs:
            async def effect(session: AsyncSession, org: Org = org) -> None:
                campaigns.append(await self.ensure_campaign(session, spec, occ, org))
                await actions.announce(actions.ActionContext(self.services, session, spec, occ, announce, now), campaigns[-1], org)

            await self._claimed(org.id, occ, announce, now, False, report, effect)
        if report.executed:
            self._on_commit()
        return campaigns

    def _extended_deadline(self, now: dt.datetime, min_days_left: int) -> dt.datetime:
        tz = self.services.tz
        local = now.astimezone(tz)
        cal = self.services.calendar
        last = cal.nth_workday(local.year, local.month, -1)
        day = max(last, cal.add_workdays(local.date(), min_days_left))
        return dt.datetime.combine(day, dt.time(18, 0), tzinfo=tz)
