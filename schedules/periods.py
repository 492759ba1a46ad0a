"""Periods (month, quarter, year, day, ISO week): their windows, labels and title values."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodWindow:
    """One period: its stable label (``2026-11``, ``2026-Q4``, ``2026``, ``2026-11-27``, ``2026-W48``)
    and its first and last day."""

    period: str
    label: str
    first: dt.date
    last: dt.date

    def month(self, index: int) -> tuple[int, int]:
        """(year, month) of the ``index``-th month (1-based) of this period."""
        total = self.first.year * 12 + self.first.month - 1 + index - 1
        return total // 12, total % 12 + 1

    def title_values(self) -> dict[str, int | str]:
        return {
            "year": self.first.year,
            "month": self.first.month,
            "quarter": (self.first.month - 1) // 3 + 1,
            "day": self.first.day,
            "period": self.label,
        }


def add_months(d: dt.date, months: int) -> dt.date:
    total = d.year * 12 + d.month - 1 + months
    year, month = total // 12, total % 12 + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def clamp_day(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


_START: dict[str, Callable[[dt.date], dt.date]] = {
    "month": lambda d: d.replace(day=1),
    "quarter": lambda d: dt.date(d.year, (d.month - 1) // 3 * 3 + 1, 1),
    "year": lambda d: dt.date(d.year, 1, 1),
    "day": lambda d: d,
    "week": lambda d: d - dt.timedelta(days=d.weekday()),
}
_NEXT: dict[str, Callable[[dt.date], dt.date]] = {
    "month": lambda d: add_months(d, 1),
    "quarter": lambda d: add_months(d, 3),
    "year": lambda d: add_months(d, 12),
    "day": lambda d: d + dt.timedelta(days=1),
    "week": lambda d: d + dt.timedelta(days=7),
}
_LABEL: dict[str, Callable[[dt.date], str]] = {
    "month": lambda d: f"{d.year}-{d.month:02d}",
    "quarter": lambda d: f"{d.year}-Q{(d.month - 1) // 3 + 1}",
    "year": lambda d: f"{d.year}",
    "day": lambda d: d.isoformat(),
    "week": lambda d: "{}-W{:02d}".format(*d.isocalendar()[:2]),
}


def period_label(period: str, d: dt.date) -> str:
    """The label of the ``period`` containing ``d``."""
    return _LABEL[period](_START[period](d))


def period_window(period: str, d: dt.date) -> PeriodWindow:
    """The ``period`` containing ``d``."""
    first = _START[period](d)
    last = _NEXT[period](first) - dt.timedelta(days=1)
    return PeriodWindow(period, _LABEL[period](first), first, last)


def iter_periods(period: str, start: dt.date, end: dt.date) -> list[PeriodWindow]:
    """Every ``period`` intersecting ``[start, end]``, in order."""
    windows = []
    first = _START[period](start)
    while first <= end:
        windows.append(period_window(period, first))
        first = _NEXT[period](first)
    return windows
