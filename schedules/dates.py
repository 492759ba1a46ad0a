"""Nominal dates from open and deadline rules, before the holiday policy is applied."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.domain.workdays import WorkdayCalendar
from schedules.models import CalendarOpen, CronOpen, DeadlineRule, ScheduleSpec
from schedules.periods import PeriodWindow, clamp_day, iter_periods, period_window
from schedules.timing import at_time, cron_fire_times

# A candidate campaign start: its period and when the rule says it opens.
Candidate = tuple[PeriodWindow, dt.datetime]


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> dt.date:
    days = [d for d in calendar.Calendar().itermonthdates(year, month) if d.month == month]
    matching = [d for d in days if d.weekday() == weekday]
    if abs(nth) > len(matching):
        raise ValueError(f"{year}年{month}月没有第{nth}个星期{'一二三四五六日'[weekday]}")
    return matching[nth - 1] if nth > 0 else matching[nth]


def _open_nth_workday(rule: Any, window: PeriodWindow, cal: WorkdayCalendar) -> dt.date:
    return cal.nth_workday(*window.month(rule.month), rule.n)


def _open_day_of_month(rule: Any, window: PeriodWindow, cal: WorkdayCalendar) -> dt.date:
    return clamp_day(*window.month(rule.month), rule.day)


def _open_weekday_of_month(rule: Any, window: PeriodWindow, cal: WorkdayCalendar) -> dt.date:
    return _nth_weekday(*window.month(rule.month), rule.weekday, rule.nth)


_OPEN_DATE: dict[str, Callable[[Any, PeriodWindow, WorkdayCalendar], dt.date]] = {
    "nth_workday": _open_nth_workday,
    "day_of_month": _open_day_of_month,
    "weekday_of_month": _open_weekday_of_month,
    "month_in_period": _open_day_of_month,
}


def _calendar_candidates(
    rule: CalendarOpen, windows: list[PeriodWindow], cal: WorkdayCalendar, failures: list[tuple[str, str]]
) -> list[Candidate]:
    found = []
    for window in windows:
        try:
            day = _OPEN_DATE[rule.kind](rule, window, cal)
        except ValueError as exc:  # e.g. n-th workday beyond the month
            failures.append((window.label, f"无法确定开始日期：{exc}"))
            continue
        found.append((window, at_time(day, rule.time)))
    return found


def _cron_candidates(rule: CronOpen, period: str, start: dt.date, end: dt.date) -> list[Candidate]:
    begin = at_time(start, "00:00")
    stop = at_time(end + dt.timedelta(days=1), "00:00")
    return [(period_window(period, fire.date()), fire) for fire in cron_fire_times(rule.expr, begin, stop)]


def candidates(
    spec: ScheduleSpec, start: dt.date, end: dt.date, cal: WorkdayCalendar, failures: list[tuple[str, str]]
) -> list[Candidate]:
    """Nominal openings: one per period intersecting ``[start, end]``, or every cron fire in it.

    Periods whose opening cannot be computed are appended to ``failures`` as (label, reason).
    """
    if isinstance(spec.open, CronOpen):
        return _cron_candidates(spec.open, spec.period, start, end)
    return _calendar_candidates(spec.open, iter_periods(spec.period, start, end), cal, failures)


@dataclass(frozen=True)
class DeadlineContext:
    window: PeriodWindow
    nominal: dt.date  # the opening date by rule
    opened: dt.date  # the opening date after the holiday policy


def _deadline_day_of_month(rule: DeadlineRule, ctx: DeadlineContext, cal: WorkdayCalendar) -> dt.date:
    year, month = ctx.window.month(rule.month) if rule.month else (ctx.nominal.year, ctx.nominal.month)
    return clamp_day(year, month, rule.day or 1)


_DEADLINE_DATE: dict[str, Callable[[DeadlineRule, DeadlineContext, WorkdayCalendar], dt.date]] = {
    "day_of_month": _deadline_day_of_month,
    "offset_days": lambda rule, ctx, cal: ctx.opened + dt.timedelta(days=rule.days or 0),
    "offset_workdays": lambda rule, ctx, cal: cal.add_workdays(ctx.opened, rule.days or 0),
    "last_workday": lambda rule, ctx, cal: cal.previous_workday(ctx.window.last),
    "same_day": lambda rule, ctx, cal: ctx.opened,
}


def nominal_deadline(rule: DeadlineRule, ctx: DeadlineContext, cal: WorkdayCalendar) -> dt.date:
    """The deadline date by rule, before the holiday policy.

    ``day_of_month`` without ``month`` uses the month of the nominal opening (the month the campaign
    belongs to, not the month a holiday pushed it into); offsets count from the shifted opening.
    """
    return _DEADLINE_DATE[rule.kind](rule, ctx, cal)
