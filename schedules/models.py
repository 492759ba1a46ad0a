"""Pydantic v2 models for one ``[[schedules]]`` entry. Unknown keys are rejected so typos get named."""

from __future__ import annotations

import string
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schedules.timing import Offset, cron_trigger, parse_hhmm, parse_offset

Period = Literal["month", "quarter", "year", "day", "week"]
HolidayPolicy = Literal["next", "previous", "skip", "none"]
DeadlinePolicy = Literal["next", "previous", "none"]
EventKind = Literal["open", "announce", "remind", "escalate_secretary", "escalate_committee"]

MONTHS_IN_PERIOD: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}
TITLE_FIELDS = frozenset({"year", "month", "quarter", "day", "period"})
TEXT_FIELDS = frozenset({"title", "deadline", "purpose", "form_name"})
DEFAULT_ANNOUNCE_TEXT = "【{title}】现已开始，请于{deadline}前完成填报。{purpose}"
DEFAULT_REMIND_TEXT = "提醒：【{title}】将于{deadline}截止，您尚未填报「{form_name}」。{purpose}"

_ID = r"^[a-z][a-z0-9_]{0,47}$"


def _check_time(value: str) -> str:
    parse_hhmm(value)
    return value


def _check_placeholders(template: str, allowed: frozenset[str]) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"bad template {template!r}: {exc}") from exc
    unknown = sorted(n for n in names if n not in allowed)
    if unknown:
        raise ValueError(f"unknown placeholder(s) {unknown}; allowed: {sorted(allowed)}")
    return template


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _TimedRule(_Model):
    time: str = "09:00"

    @field_validator("time")
    @classmethod
    def _valid_time(cls, value: str) -> str:
        return _check_time(value)


class NthWorkdayOpen(_TimedRule):
    """The n-th workday (``-1`` = last) of ``month`` within the period."""

    kind: Literal["nth_workday"]
    n: int = Field(1, ge=-23, le=23)
    month: int = Field(1, ge=1, le=12)

    @field_validator("n")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("n must be >= 1 (from the start) or <= -1 (from the end)")
        return value


class DayOfMonthOpen(_TimedRule):
    """A fixed day (clamped to the month's end) of ``month`` within the period."""

    kind: Literal["day_of_month"]
    day: int = Field(1, ge=1, le=31)
    month: int = Field(1, ge=1, le=12)


class WeekdayOfMonthOpen(_TimedRule):
    """The ``nth`` ``weekday`` (0 = Monday … 4 = Friday; nth -1 = last) of ``month`` within the period."""

    kind: Literal["weekday_of_month"]
    weekday: int = Field(4, ge=0, le=6)
    nth: int = Field(1, ge=-5, le=5)
    month: int = Field(1, ge=1, le=12)


class MonthInPeriodOpen(_TimedRule):
    """``day`` of the ``month``-th month of the period (12 = December for a yearly schedule)."""

    kind: Literal["month_in_period"]
    month: int = Field(ge=1, le=12)
    day: int = Field(1, ge=1, le=31)


class CronOpen(_Model):
    """A 5-field crontab (standard weekday numbering, 0/7 = Sunday), evaluated in Asia/Shanghai."""

    kind: Literal["cron"]
    expr: str

    @field_validator("expr")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        cron_trigger(value)
        return value


CalendarOpen = NthWorkdayOpen | DayOfMonthOpen | WeekdayOfMonthOpen | MonthInPeriodOpen
OpenRule = Annotated[
    NthWorkdayOpen | DayOfMonthOpen | WeekdayOfMonthOpen | MonthInPeriodOpen | CronOpen,
    Field(discriminator="kind"),
]
DeadlineKind = Literal["day_of_month", "offset_days", "offset_workdays", "last_workday", "same_day"]
_DEADLINE_NEEDS: dict[str, str | None] = {
    "day_of_month": "day",
    "offset_days": "days",
    "offset_workdays": "days",
    "last_workday": None,
    "same_day": None,
}


class DeadlineRule(_Model):
    """When answers are due. ``month`` (day_of_month only) is the month within the period;
    by default the month the campaign nominally opens in."""

    kind: DeadlineKind
    day: int | None = Field(None, ge=1, le=31)
    days: int | None = Field(None, ge=0, le=366)
    month: int | None = Field(None, ge=1, le=12)
    time: str = "18:00"

    @field_validator("time")
    @classmethod
    def _valid_time(cls, value: str) -> str:
        return _check_time(value)

    @model_validator(mode="after")
    def _needs(self) -> DeadlineRule:
        needed = _DEADLINE_NEEDS[self.kind]
        if needed and getattr(self, needed) is None:
            raise ValueError(f"deadline kind {self.kind!r} needs '{needed}'")
        return self


class Audience(_Model):
    """Who is asked: an organisation (``""`` = every branch), optionally narrowed by roles/categories."""

    scope: str = ""
    roles: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    per: Literal["branch", "committee"] = "branch"


class ScheduleSpec(_Model):
    """One ``[[schedules]]`` entry: which form, who, when it opens and closes, reminders, escalation."""

    key: str = Field(pattern=_ID)
    form: str = Field(pattern=_ID)
    title: str = Field(min_length=1)  # may use {year} {month} {quarter} {day} {period}
    purpose: str = Field(min_length=1)
    audience: Audience = Audience()
    period: Period
    open: OpenRule
    deadline: DeadlineRule
    holiday_policy: HolidayPolicy = "next"
    deadline_policy: DeadlinePolicy | None = None  # None: as holiday_policy, but "skip" → "next"
    reminders: tuple[str, ...] = ()
    escalate_secretary: str = ""
    escalate_committee: str = ""
    quiet_hours: tuple[str, str] = ("21:00", "08:00")
    announce: bool = True
    announce_text: str | None = None
    remind_text: str | None = None
    enabled: bool = True

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _check_placeholders(value, TITLE_FIELDS)

    @field_validator("announce_text", "remind_text")
    @classmethod
    def _texts(cls, value: str | None) -> str | None:
        return None if value is None else _check_placeholders(value, TEXT_FIELDS)

    @field_validator("reminders")
    @classmethod
    def _reminders(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        offsets = [parse_offset(v) for v in values]
        late = [o.text for o in offsets if o.amount > 0]
        if late:
            raise ValueError(f"reminders must be before the deadline (negative), got {late}")
        return tuple(dict.fromkeys(o.text for o in offsets))

    @field_validator("escalate_secretary", "escalate_committee")
    @classmethod
    def _escalation(cls, value: str) -> str:
        return parse_offset(value).text if value.strip() else ""

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: tuple[str, str]) -> tuple[str, str]:
        for item in value:
            parse_hhmm(item)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> ScheduleSpec:
        months = MONTHS_IN_PERIOD.get(self.period)
        if isinstance(self.open, CronOpen):
            return self._check_deadline_month(months)
        if months is None:
            raise ValueError(
                f"open.kind {self.open.kind!r} needs period month/quarter/year, "
                f"got {self.period!r} (use open.kind 'cron')"
            )
        if self.open.month > months:
            raise ValueError(f"open.month {self.open.month} is beyond a {self.period} ({months} month(s))")
        return self._check_deadline_month(months)

    def _check_deadline_month(self, months: int | None) -> ScheduleSpec:
        if self.deadline.kind == "last_workday" and months is None:
            raise ValueError(
                f"deadline.kind 'last_workday' needs period month/quarter/year, got {self.period!r}"
            )
        if self.deadline.month is not None and (months is None or self.deadline.month > months):
            raise ValueError(f"deadline.month {self.deadline.month} is beyond a {self.period}")
        return self

    # ---- derived values used by the planner ----------------------------------------------------
    def reminder_offsets(self) -> list[Offset]:
        return [parse_offset(text) for text in self.reminders]

    def escalation_offsets(self) -> dict[EventKind, Offset]:
        pairs: dict[EventKind, str] = {
            "escalate_secretary": self.escalate_secretary,
            "escalate_committee": self.escalate_committee,
        }
        return {kind: parse_offset(text) for kind, text in pairs.items() if text}

    def effective_deadline_policy(self) -> DeadlinePolicy:
        if self.deadline_policy is not None:
            return self.deadline_policy
        return "next" if self.holiday_policy == "skip" else self.holiday_policy

    def announce_template(self) -> str:
        return self.announce_text or DEFAULT_ANNOUNCE_TEXT

    def remind_template(self) -> str:
        return self.remind_text or DEFAULT_REMIND_TEXT
