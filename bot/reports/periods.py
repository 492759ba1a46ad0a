"""Report periods as people type them (2026-11, 2026年11月, 2026, 2026-Q4) and how campaign period labels
fall inside them. Pure; no database.

Campaign labels are ``2026-11`` (month), ``2026-Q4`` (quarter), ``2026`` (year), ``2026-W48`` (week) and
``2026-11-27`` (day, also used by ad-hoc campaigns). A report period covers a label when the label's
first day lies inside it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

PeriodKind = Literal["month", "quarter", "year"]

_MONTH = re.compile(r"^(?P<y>\d{4})\s*(?:-|/|\.|年)\s*(?P<m>\d{1,2})\s*月?(?:份)?$")
_QUARTER = re.compile(r"^(?P<y>\d{4})\s*(?:-|年)?\s*(?:Q|q|第)(?P<q>[1-4一二三四])(?:季度?)?$")
_YEAR = re.compile(r"^(?P<y>\d{4})\s*年?(?:度)?$")
_ZH_Q = {"一": 1, "二": 2, "三": 3, "四": 4}


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """A month, quarter or year: its label (``2026-11`` / ``2026-Q4`` / ``2026``) and first/last day."""

    kind: PeriodKind
    label: str
    first: dt.date
    last: dt.date

    @property
    def year(self) -> int:
        return self.first.year

    @property
    def months(self) -> list[int]:
        """Month numbers covered (1–12)."""
        return list(range(self.first.month, self.last.month + 1))

    @property
    def title(self) -> str:
        """Chinese name: 2026年11月 / 2026年第4季度 / 2026年度."""
        if self.kind == "month":
            return f"{self.year}年{self.first.month}月"
        if self.kind == "quarter":
            return f"{self.year}年第{(self.first.month - 1) // 3 + 1}季度"
        return f"{self.year}年度"

    @property
    def like_prefix(self) -> str:
        """SQL LIKE pattern matching campaign labels whose text starts inside this period.

        Month ``2026-11%`` matches ``2026-11`` and ``2026-11-27``; year ``2026%`` matches every 2026 label.
        Quarter labels need :func:`label_in_period` (the months are not a common prefix).
        """
        return f"{self.label}%" if self.kind != "quarter" else f"{self.year}%"

    def contains(self, day: dt.date) -> bool:
        return self.first <= day <= self.last


def month_period(year: int, month: int) -> ReportPeriod:
    last = calendar.monthrange(year, month)[1]
    return ReportPeriod("month", f"{year}-{month:02d}", dt.date(year, month, 1), dt.date(year, month, last))


def quarter_period(year: int, quarter: int) -> ReportPeriod:
    first_month = (quarter - 1) * 3 + 1
    last_month = first_month + 2
    last = calendar.monthrange(year, last_month)[1]
    return ReportPeriod("quarter", f"{year}-Q{quarter}", dt.date(year, first_month, 1), dt.date(year, last_month, last))


def year_period(year: int) -> ReportPeriod:
    return ReportPeriod("year", f"{year}", dt.date(year, 1, 1), dt.date(year, 12, 31))


def parse_period(text: str) -> ReportPeriod | None:
    """``2026-11`` / ``2026年11月`` / ``2026-Q4`` / ``2026年第四季度`` / ``2026`` → period; ``None`` if not one."""
    t = text.strip()
    if m := _MONTH.match(t):
        year, month = int(m["y"]), int(m["m"])
        return month_period(year, month) if 1 <= month <= 12 and 1900 <= year <= 2100 else None
    if m := _QUARTER.match(t):
        q = m["q"]
        year = int(m["y"])
        return quarter_period(year, _ZH_Q.get(q) or int(q)) if 1900 <= year <= 2100 else None
    if m := _YEAR.match(t):
        year = int(m["y"])
        return year_period(year) if 1900 <= year <= 2100 else None
    return None


def looks_like_period(text: str) -> bool:
    """Text that is meant as a period (starts with a 4-digit year), valid or not."""
    return bool(re.match(r"^\d{4}", text.strip()))


def current_period(kind: PeriodKind, today: dt.date) -> ReportPeriod:
    if kind == "month":
        return month_period(today.year, today.month)
    if kind == "quarter":
        return quarter_period(today.year, (today.month - 1) // 3 + 1)
    return year_period(today.year)


def label_start(label: str) -> dt.date | None:
    """The first day of a campaign period label, or ``None`` for an unknown format."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", label):
            return dt.date.fromisoformat(label)
        if m := re.fullmatch(r"(\d{4})-(\d{2})", label):
            return dt.date(int(m[1]), int(m[2]), 1)
        if m := re.fullmatch(r"(\d{4})-Q([1-4])", label):
            return dt.date(int(m[1]), (int(m[2]) - 1) * 3 + 1, 1)
        if m := re.fullmatch(r"(\d{4})-W(\d{2})", label):
            return dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
        if re.fullmatch(r"\d{4}", label):
            return dt.date(int(label), 1, 1)
    except ValueError:
        return None
    return None


def label_in_period(label: str, period: ReportPeriod) -> bool:
    start = label_start(label)
    return start is not None and period.contains(start)


def sub_periods(period: ReportPeriod, cadence: PeriodKind, until: dt.date | None = None) -> list[ReportPeriod]:
    """The months / quarters / year of ``cadence`` that overlap ``period`` and have started by ``until``.

    A quarterly item checked for one month is checked for the quarter containing it.
    """
    out: list[ReportPeriod] = []
    if cadence == "month":
        out = [month_period(period.year, m) for m in period.months]
    elif cadence == "quarter":
        quarters = sorted({(m - 1) // 3 + 1 for m in period.months})
        out = [quarter_period(period.year, q) for q in quarters]
    else:
        out = [year_period(period.year)]
    if until is not None:
        out = [p for p in out if p.first <= until]
    return out
