"""Pure occurrence planning: spec + calendar + date range → dated campaigns and the messages they send.

No I/O and no clock: ``dangjian schedule preview`` prints a ``Plan``; the scheduler claims its events.
Every datetime is aware (Asia/Shanghai).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.domain.workdays import WorkdayCalendar
from schedules.dates import Candidate, DeadlineContext, candidates, nominal_deadline
from schedules.models import EventKind, ScheduleSpec
from schedules.periods import period_label, period_window
from schedules.timing import Offset, at_time, format_zh, parse_offset, quiet_end

__all__ = [
    "Occurrence",
    "Offset",
    "Plan",
    "PlannedEvent",
    "parse_offset",
    "period_of",
    "plan_many",
    "plan_occurrences",
]


@dataclass(frozen=True)
class PlannedEvent:
    """One message to send. ``offset`` is the spec's offset text ("" for announce): stable across
    calendar or quiet-hour changes, so it belongs in the claim key."""

    kind: EventKind
    due_at: dt.datetime
    note: str = ""
    offset: str = ""


@dataclass(frozen=True)
class Occurrence:
    """One campaign of a schedule for one period (per branch when the integrator fans it out)."""

    schedule_key: str
    period_label: str
    open_at: dt.datetime
    deadline_at: dt.datetime
    events: tuple[PlannedEvent, ...]
    title: str = ""
    open_note: str = ""  # why the opening moved, "" if it did not
    deadline_note: str = ""  # why the deadline moved
    dropped: tuple[str, ...] = ()  # events not sent, with the reason
    fallback: bool = False  # computed with the Mon–Fri fallback (calendar data missing)

    def claim_key(self, event: PlannedEvent) -> tuple[str, str, str, str]:
        """(schedule_key, period_label, kind, offset): unique per message within one audience unit."""
        return (self.schedule_key, self.period_label, event.kind, event.offset)


@dataclass
class Plan:
    occurrences: list[Occurrence] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (period_label, reason)
    notes: list[str] = field(default_factory=list)
    uncovered_years: list[int] = field(default_factory=list)

    def timeline(self) -> list[tuple[Occurrence, PlannedEvent]]:
        """Every event of every occurrence, by due time."""
        pairs = [(occ, ev) for occ in self.occurrences for ev in occ.events]
        return sorted(pairs, key=lambda pair: (pair[1].due_at, pair[0].schedule_key))


def period_of(spec: ScheduleSpec, d: dt.date) -> str:
    """The period label of ``spec`` that contains ``d`` (``2026-11``, ``2026-Q4``, ``2026``, ``2026-11-27``)."""
    return period_label(spec.period, d)


def _join(*parts: str) -> str:
    return "；".join(p for p in parts if p)


def _quiet_move(at: dt.datetime, quiet: tuple[str, str]) -> tuple[dt.datetime, str]:
    moved = quiet_end(at, quiet)
    if moved is None:
        return at, ""
    return moved, f"原定{format_zh(at)}处于免打扰时段（{quiet[0]}–{quiet[1]}），推迟至{format_zh(moved)}"


@dataclass
class _Draft:
    """Mutable working state for one occurrence's events."""

    spec: ScheduleSpec
    open_at: dt.datetime
    deadline_at: dt.datetime
    deadline_note: str
    events: list[PlannedEvent] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def add_relative(self, kind: EventKind, offset: Offset, cal: WorkdayCalendar, cap: bool) -> None:
        label = f"{_KIND_ZH[kind]}（{offset.describe_zh()}）"
        due = offset.apply(self.deadline_at, cal)
        if due < self.open_at:
            self.dropped.append(f"{label}原定{format_zh(due)}，早于开始时间，不发送")
            return
        due, quiet_note = _quiet_move(due, self.spec.quiet_hours)
        if cap and due > self.deadline_at:
            self.dropped.append(f"{label}：{quiet_note}，已晚于截止时间，不发送")
            return
        self.events.append(PlannedEvent(kind, due, _join(self.deadline_note, quiet_note), offset.text))

    def add_announce(self, open_note: str) -> None:
        due, quiet_note = _quiet_move(self.open_at, self.spec.quiet_hours)
        self.events.append(PlannedEvent("announce", due, _join(open_note, quiet_note)))

    def finished(self) -> tuple[PlannedEvent, ...]:
        unique: dict[tuple[str, dt.datetime], PlannedEvent] = {}
        for event in sorted(self.events, key=lambda e: e.due_at):
            if (event.kind, event.due_at) in unique:
                self.dropped.append(f"{_KIND_ZH[event.kind]}（{event.offset}）与同一时间的提醒重复，已合并")
                continue
            unique[(event.kind, event.due_at)] = event
        return tuple(unique.values())


_KIND_ZH: dict[str, str] = {
    "open": "开始收集",
    "announce": "通知",
    "remind": "提醒",
    "escalate_secretary": "报告支部书记",
    "escalate_committee": "报告上级党委",
}


def _deadline(
    spec: ScheduleSpec, ctx: DeadlineContext, open_at: dt.datetime, cal: WorkdayCalendar
) -> tuple[dt.datetime, str]:
    shifted = cal.shift(nominal_deadline(spec.deadline, ctx, cal), spec.effective_deadline_policy())
    assert shifted.date is not None  # deadline policies never skip
    deadline_at = at_time(shifted.date, spec.deadline.time)
    note = f"截止日{shifted.reason}" if shifted.reason else ""
    if deadline_at < open_at:
        note = _join(note, f"截止时间{format_zh(deadline_at)}早于开始时间，改为{format_zh(open_at)}")
        deadline_at = open_at
    return deadline_at, note


def _build(spec: ScheduleSpec, candidate: Candidate, cal: WorkdayCalendar) -> Occurrence | tuple[str, str]:
    window, nominal = candidate
    shifted = cal.shift(nominal.date(), spec.holiday_policy)
    if shifted.date is None:
        return window.label, shifted.reason
    open_at = dt.datetime.combine(shifted.date, nominal.timetz())
    if spec.period == "day":  # a daily campaign belongs to the day it actually runs
        window = period_window("day", shifted.date)
    deadline_at, deadline_note = _deadline(
        spec, DeadlineContext(window, nominal.date(), shifted.date), open_at, cal
    )
    draft = _Draft(spec, open_at, deadline_at, deadline_note)
    if spec.announce:
        draft.add_announce(shifted.reason)
    for offset in spec.reminder_offsets():
        draft.add_relative("remind", offset, cal, cap=True)
    for kind, offset in spec.escalation_offsets().items():
        draft.add_relative(kind, offset, cal, cap=False)
    events = draft.finished()
    years = {nominal.year, open_at.year, deadline_at.year}
    return Occurrence(
        schedule_key=spec.key,
        period_label=window.label,
        open_at=open_at,
        deadline_at=deadline_at,
        events=events,
        title=spec.title.format(**window.title_values()),
        open_note=shifted.reason,
        deadline_note=deadline_note,
        dropped=tuple(draft.dropped),
        fallback=any(not cal.is_covered(y) for y in years),
    )


def _dedupe(occurrences: list[Occurrence], notes: list[str]) -> list[Occurrence]:
    """One occurrence per period label; an unshifted opening wins over one a holiday moved there."""
    chosen: dict[str, Occurrence] = {}
    for occ in occurrences:
        current = chosen.get(occ.period_label)
        if current is None or (current.open_note and not occ.open_note):
            chosen[occ.period_label] = occ
    if len(chosen) < len(occurrences):
        notes.append(
            f"{occurrences[0].schedule_key}：{len(occurrences) - len(chosen)}次触发与同一周期重复，已合并"
        )
    return sorted(chosen.values(), key=lambda occ: occ.open_at)


def _fallback_note(year: int) -> str:
    return (
        f"{year}年节假日安排不在 chinesecalendar 数据范围内，已按周一至周五并结合配置的"
        f" extra_holidays / extra_workdays 推算，请管理员核对"
    )


def plan_occurrences(spec: ScheduleSpec, start: dt.date, end: dt.date, cal: WorkdayCalendar) -> Plan:
    """Every occurrence of ``spec`` for the periods intersecting ``[start, end]`` (cron: fires within it).

    Occurrences of a period that intersects the range are returned whole, even if they open before
    ``start``; filter events by ``due_at`` when only the future matters.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    plan = Plan()
    built: list[Occurrence] = []
    for candidate in candidates(spec, start, end, cal, plan.skipped):
        result = _build(spec, candidate, cal)
        if isinstance(result, Occurrence):
            built.append(result)
        elif not (spec.open.kind == "cron" and cal.is_plain_weekend(candidate[1].date())):
            plan.skipped.append(result)  # ordinary weekends of a cron schedule are not news
    plan.occurrences = _dedupe(built, plan.notes)
    years = set(cal.uncovered_years(start, end))
    for occ in plan.occurrences:  # an occurrence may reach beyond the range (e.g. a deadline in January)
        years.update(y for y in (occ.open_at.year, occ.deadline_at.year) if not cal.is_covered(y))
    plan.uncovered_years = sorted(years)
    plan.notes[:0] = [_fallback_note(y) for y in plan.uncovered_years]
    return plan


def plan_many(specs: Iterable[ScheduleSpec], start: dt.date, end: dt.date, cal: WorkdayCalendar) -> Plan:
    """``plan_occurrences`` for several schedules, merged; skipped labels are prefixed with the key."""
    merged = Plan()
    for spec in specs:
        part = plan_occurrences(spec, start, end, cal)
        merged.occurrences.extend(part.occurrences)
        merged.skipped.extend((f"{spec.key} {label}", reason) for label, reason in part.skipped)
        merged.notes.extend(n for n in part.notes if n not in merged.notes)
        merged.uncovered_years = sorted(set(merged.uncovered_years) | set(part.uncovered_years))
    merged.occurrences.sort(key=lambda occ: (occ.open_at, occ.schedule_key))
    return merged
