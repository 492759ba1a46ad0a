"""Time helpers shared by the schedule spec and the planner: offsets, clock times, quiet hours, cron."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.domain.workdays import WorkdayCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")

OffsetUnit = Literal["d", "h", "m", "wd"]
_OFFSET_RE = re.compile(r"^([+-]?)(\d{1,4})(wd|d|h|m)$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_UNIT_ZH = {"d": "天", "h": "小时", "m": "分钟", "wd": "个工作日"}
_UNITS: dict[str, OffsetUnit] = {"d": "d", "h": "h", "m": "m", "wd": "wd"}


@dataclass(frozen=True)
class Offset:
    """A signed distance from a deadline: calendar days, hours, minutes or workdays (``wd``)."""

    amount: int  # signed; negative = before the deadline
    unit: OffsetUnit
    text: str  # the canonical spelling, e.g. "-3d"; stable, usable in claim keys

    def apply(self, at: dt.datetime, cal: WorkdayCalendar) -> dt.datetime:
        """``at`` moved by this offset; workday offsets keep the time of day."""
        return _APPLY[self.unit](at, self.amount, cal)

    def describe_zh(self) -> str:
        """``-3d`` → ``截止前3天``; ``0h`` → ``截止时``; ``+1d`` → ``截止后1天``."""
        if self.amount == 0:
            return "截止时"
        side = "前" if self.amount < 0 else "后"
        return f"截止{side}{abs(self.amount)}{_UNIT_ZH[self.unit]}"


def _add_workdays(at: dt.datetime, n: int, cal: WorkdayCalendar) -> dt.datetime:
    return dt.datetime.combine(cal.add_workdays(at.date(), n), at.timetz())


_APPLY: dict[str, Callable[[dt.datetime, int, WorkdayCalendar], dt.datetime]] = {
    "d": lambda at, n, cal: at + dt.timedelta(days=n),
    "h": lambda at, n, cal: at + dt.timedelta(hours=n),
    "m": lambda at, n, cal: at + dt.timedelta(minutes=n),
    "wd": _add_workdays,
}


def parse_offset(text: str) -> Offset:
    """Parse ``-3d``, ``-2h``, ``-30m``, ``-2wd``, ``+1d`` or ``0``; ValueError otherwise."""
    raw = text.strip()
    if raw in ("0", "+0", "-0"):
        raw = "0h"
    match = _OFFSET_RE.match(raw)
    if match is None:
        raise ValueError(f"bad offset {text!r}: expected e.g. '-3d', '-2h', '-30m', '-2wd' or '0'")
    sign, digits, unit = match.groups()
    amount = -int(digits) if sign == "-" else int(digits)
    canonical = f"{'-' if amount < 0 else ('+' if amount > 0 else '')}{abs(amount)}{unit}"
    return Offset(amount, _UNITS[unit], canonical)


def parse_hhmm(text: str) -> dt.time:
    """``"09:00"`` → ``time(9, 0)``; ValueError otherwise."""
    match = _TIME_RE.match(text.strip())
    if match is None:
        raise ValueError(f"bad time {text!r}: expected HH:MM, e.g. '09:00'")
    return dt.time(int(match.group(1)), int(match.group(2)))


def at_time(d: dt.date, hhmm: str) -> dt.datetime:
    """An aware Asia/Shanghai datetime on ``d`` at ``hhmm``."""
    return dt.datetime.combine(d, parse_hhmm(hhmm), tzinfo=SHANGHAI)


def quiet_end(at: dt.datetime, quiet: tuple[str, str]) -> dt.datetime | None:
    """If ``at`` falls in the quiet period ``(start, end)`` (may wrap midnight), when it ends; else None.

    Equal start and end means no quiet hours.
    """
    start, end = parse_hhmm(quiet[0]), parse_hhmm(quiet[1])
    local = at.astimezone(SHANGHAI)
    now = local.time().replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        inside, next_day = start <= now < end, False
    else:
        inside, next_day = now >= start or now < end, now >= start
    if not inside:
        return None
    day = local.date() + dt.timedelta(days=1 if next_day else 0)
    return dt.datetime.combine(day, end, tzinfo=SHANGHAI)


def format_zh(at: dt.datetime) -> str:
    """``2026-11-16 08:00`` → ``11月16日08:00``."""
    local = at.astimezone(SHANGHAI)
    return f"{local.month}月{local.day}日{local:%H:%M}"


# ---- cron ---------------------------------------------------------------------------------------
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DOW_NAME_RE = re.compile(r"^[a-z]{3}(-[a-z]{3})?$")


def _dow_values(part: str) -> list[int]:
    base, _, step = part.partition("/")
    if base == "*":
        low, high = 0, 6
    elif "-" in base:
        low, high = (int(x) for x in base.split("-", 1))
    else:
        low = int(base)
        high = 6 if step else low
    if not (0 <= low <= high <= 7):
        raise ValueError(f"bad day-of-week {part!r}: use 0-7 (0 and 7 are Sunday) or mon..sun")
    return list(range(low, high + 1, int(step or 1)))


def crontab_dow_to_names(field: str) -> str:
    """Translate a standard crontab day-of-week field (0/7 = Sunday) into APScheduler day names.

    APScheduler 3's ``CronTrigger.from_crontab`` reads ``1-5`` as Tuesday–Saturday (it counts 0 = Monday);
    admins write standard crontab, so numbers are rewritten as names first (``1-5`` → ``mon,tue,…,fri``).
    """
    if field == "*":
        return field
    names: list[str] = []
    for part in field.lower().split(","):
        if _DOW_NAME_RE.match(part):
            names.append(part)
            continue
        names.extend(_DOW_NAMES[v] for v in _dow_values(part))
    return ",".join(dict.fromkeys(names))


def cron_trigger(expr: str) -> CronTrigger:
    """A CronTrigger in Asia/Shanghai from a 5-field crontab expression (standard weekday numbering)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"bad cron {expr!r}: expected 5 fields (minute hour day month weekday)")
    fields[4] = crontab_dow_to_names(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=SHANGHAI)


def cron_fire_times(expr: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every fire time of ``expr`` in ``[start, end)``."""
    trigger = cron_trigger(expr)
    fires: list[dt.datetime] = []
    previous: dt.datetime | None = None
    now = start
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire >= end:
            return fires
        fires.append(fire)
        previous = now = fire
