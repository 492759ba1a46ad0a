"""The Chinese workday calendar: statutory holidays, makeup workdays (调休上班) and config overrides.

Data comes from the pinned ``chinesecalendar`` package. For a year it has no data for (it raises
``NotImplementedError``, e.g. 2027 with v1.11.0) the calendar falls back to Monday–Friday plus the
admin's ``extra_holidays`` / ``extra_workdays`` and records the year in ``fallback_years`` so callers can
warn that the calendar data is missing. Config overrides always win over the package.

With ``allow_makeup_days=False`` a weekend that is officially a makeup workday is treated as a rest day
by every method here (events are never placed on it); ``is_official_workday`` keeps the legal answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import chinese_calendar

ShiftPolicy = Literal["next", "previous", "skip", "none"]

HOLIDAY_NAMES_ZH: dict[str, str] = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}

_WEEKDAY_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_MAX_SCAN_DAYS = 366  # no real or configured calendar has a longer run of rest days


@dataclass(frozen=True)
class DayInfo:
    """What the calendar knows about one day (before ``allow_makeup_days`` is applied)."""

    workday: bool
    holiday: str | None = None  # Chinese holiday name for a statutory rest day
    makeup_for: str | None = None  # Chinese holiday name when the day is a makeup workday
    source: Literal["package", "config", "fallback"] = "package"


@dataclass(frozen=True)
class ShiftResult:
    """Where an event lands after applying a holiday policy; ``reason`` is "" when unchanged."""

    date: dt.date | None
    reason: str = ""

    @property
    def moved(self) -> bool:
        return bool(self.reason)


def month_day_zh(d: dt.date) -> str:
    """``2026-10-02`` → ``10月2日``."""
    return f"{d.month}月{d.day}日"


def _zh_name(english: str | None) -> str | None:
    if english is None:
        return None
    return HOLIDAY_NAMES_ZH.get(english, english)


class WorkdayCalendar:
    """Answers "is this a workday?" for any date, never raising for years without package data."""

    def __init__(
        self,
        extra_holidays: Iterable[dt.date] = (),
        extra_workdays: Iterable[dt.date] = (),
        *,
        allow_makeup_days: bool = True,
    ) -> None:
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays) - self.extra_holidays
        self.allow_makeup_days = allow_makeup_days
        self.fallback_years: set[int] = set()
        self._days: dict[dt.date, DayInfo] = {}
        self._covered: dict[int, bool] = {}

    # ---- per-day facts -------------------------------------------------------------------------
    def info(self, d: dt.date) -> DayInfo:
        cached = self._days.get(d)
        if cached is None:
            cached = self._days[d] = self._lookup(d)
        return cached

    def _lookup(self, d: dt.date) -> DayInfo:
        if d in self.extra_holidays:
            return DayInfo(workday=False, source="config")
        if d in self.extra_workdays:
            return DayInfo(workday=True, source="config")
        try:
            rest, english = chinese_calendar.get_holiday_detail(d)
        except NotImplementedError:
            self.fallback_years.add(d.year)
            return DayInfo(workday=d.weekday() < 5, source="fallback")
        name = _zh_name(english)
        if rest:
            return DayInfo(workday=False, holiday=name)
        return DayInfo(workday=True, makeup_for=name if d.weekday() >= 5 else None)

    def is_official_workday(self, d: dt.date) -> bool:
        """The legal answer: makeup weekends count as workdays."""
        return self.info(d).workday

    def is_makeup_day(self, d: dt.date) -> bool:
        """A weekend that is a workday (调休上班), from the package or ``extra_workdays``."""
        return d.weekday() >= 5 and self.info(d).workday

    def is_workday(self, d: dt.date) -> bool:
        """Workday for event placement (honours ``allow_makeup_days``)."""
        if not self.info(d).workday:
            return False
        return self.allow_makeup_days or d.weekday() < 5

    def holiday_name(self, d: dt.date) -> str | None:
        """Chinese name of the statutory holiday ``d`` belongs to (国庆节, 春节 …), else None."""
        return self.info(d).holiday

    def is_plain_weekend(self, d: dt.date) -> bool:
        """An ordinary Saturday/Sunday: a rest day with no holiday, no makeup work and no override."""
        info = self.info(d)
        return d.weekday() >= 5 and not info.workday and info.holiday is None and info.source != "config"

    def rest_reason(self, d: dt.date) -> str:
        """Why ``d`` is not a workday here, in Chinese, e.g. ``10月2日为国庆节假期``; "" for a workday."""
        if self.is_workday(d):
            return ""
        info = self.info(d)
        label = month_day_zh(d)
        if info.workday:  # a makeup weekend excluded by allow_makeup_days=False
            name = info.makeup_for or ""
            return f"{label}为{name}调休上班日（本支部不在调休日安排活动）"
        if info.holiday:
            return f"{label}为{info.holiday}假期"
        if info.source == "config":
            return f"{label}为休息日（管理员配置）"
        return f"{label}为{_WEEKDAY_ZH[d.weekday()]}"

    # ---- coverage ------------------------------------------------------------------------------
    def is_covered(self, year: int) -> bool:
        """True when the package has holiday data for ``year``."""
        if year not in self._covered:
            try:
                chinese_calendar.is_workday(dt.date(year, 6, 1))
                self._covered[year] = True
            except NotImplementedError:
                self._covered[year] = False
        return self._covered[year]

    def uncovered_years(self, start: dt.date | int, end: dt.date | int) -> list[int]:
        """Years in ``[start, end]`` (dates or years) for which the Mon–Fri fallback is used."""
        first = start if isinstance(start, int) else start.year
        last = end if isinstance(end, int) else end.year
        return [y for y in range(first, last + 1) if not self.is_covered(y)]

    # ---- navigation ----------------------------------------------------------------------------
    def _scan(self, d: dt.date, step: int, include_self: bool) -> dt.date:
        day = d if include_self else d + dt.timedelta(days=step)
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_workday(day):
                return day
            day += dt.timedelta(days=step)
        raise ValueError(f"no workday within {_MAX_SCAN_DAYS} days of {d}")

    def next_workday(self, d: dt.date, include_self: bool = True) -> dt.date:
        return self._scan(d, 1, include_self)

    def previous_workday(self, d: dt.date, include_self: bool = True) -> dt.date:
        return self._scan(d, -1, include_self)

    def workdays_in_month(self, year: int, month: int) -> list[dt.date]:
        first = dt.date(year, month, 1)
        following = dt.date(year + month // 12, month % 12 + 1, 1)
        days = (first + dt.timedelta(days=i) for i in range((following - first).days))
        return [d for d in days if self.is_workday(d)]

    def nth_workday(self, year: int, month: int, n: int) -> dt.date:
        """The n-th workday of the month: ``n=1`` first, ``n=-1`` last. ValueError if there is none."""
        if n == 0:
            raise ValueError("n must be >= 1 or <= -1")
        days = self.workdays_in_month(year, month)
        if abs(n) > len(days):
            raise ValueError(f"{year}-{month:02d} has only {len(days)} workdays, asked for n={n}")
        return days[n - 1] if n > 0 else days[n]

    def add_workdays(self, d: dt.date, n: int) -> dt.date:
        """The n-th workday after ``d`` (before it when n < 0); ``d`` itself is not counted; n=0 → d."""
        day = d
        for _ in range(abs(n)):
            day = self._scan(day, 1 if n > 0 else -1, include_self=False)
        return day

    def workdays_from(self, d: dt.date, count: int) -> list[dt.date]:
        """``count`` consecutive workdays starting at ``d`` (included if a workday), e.g. a 公示 span."""
        if count <= 0:
            return []
        days = [self.next_workday(d)]
        while len(days) < count:
            days.append(self.next_workday(days[-1], include_self=False))
        return days

    # ---- holiday policy ------------------------------------------------------------------------
    def shift(self, d: dt.date, policy: ShiftPolicy) -> ShiftResult:
        """Apply a holiday policy to an event date: next/previous workday, skip, or leave it."""
        if policy not in _SHIFTERS:
            raise ValueError(f"unknown holiday policy {policy!r}")
        if policy == "none" or self.is_workday(d):
            return ShiftResult(d)
        return _SHIFTERS[policy](self, d, self.rest_reason(d))

    def _makeup_suffix(self, d: dt.date) -> str:
        return "（调休上班日）" if self.is_makeup_day(d) else ""

    def _shift_next(self, d: dt.date, cause: str) -> ShiftResult:
        new = self.next_workday(d)
        return ShiftResult(new, f"{cause}，顺延至{month_day_zh(new)}{self._makeup_suffix(new)}")

    def _shift_previous(self, d: dt.date, cause: str) -> ShiftResult:
        new = self.previous_workday(d)
        return ShiftResult(new, f"{cause}，提前至{month_day_zh(new)}{self._makeup_suffix(new)}")

    def _shift_skip(self, d: dt.date, cause: str) -> ShiftResult:
        return ShiftResult(None, f"{cause}，本期不安排")


_SHIFTERS: dict[str, Callable[[WorkdayCalendar, dt.date, str], ShiftResult]] = {
    "next": WorkdayCalendar._shift_next,
    "previous": WorkdayCalendar._shift_previous,
    "skip": WorkdayCalendar._shift_skip,
    "none": lambda cal, d, cause: ShiftResult(d),
}
