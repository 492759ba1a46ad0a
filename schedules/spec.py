"""``[[schedules]]`` in the TOML config: the models, the default calendar and ``load_schedules``.

Config entries are merged over the defaults by ``key``: a partial table such as
``{key = "dues", deadline = {kind = "day_of_month", day = 10}}`` changes only what it names (nested
tables merge too, unless they switch ``kind``, in which case they replace the default rule). New keys
must be complete. ``enabled = false`` removes a schedule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from bot.errors import ConfigError
from schedules.defaults import DEFAULT_SCHEDULES
from schedules.models import (
    DEFAULT_ANNOUNCE_TEXT,
    DEFAULT_REMIND_TEXT,
    Audience,
    CronOpen,
    DayOfMonthOpen,
    DeadlineRule,
    EventKind,
    HolidayPolicy,
    MonthInPeriodOpen,
    NthWorkdayOpen,
    OpenRule,
    Period,
    ScheduleSpec,
    WeekdayOfMonthOpen,
)

__all__ = [
    "DEFAULT_ANNOUNCE_TEXT",
    "DEFAULT_REMIND_TEXT",
    "DEFAULT_SCHEDULES",
    "Audience",
    "CronOpen",
    "DayOfMonthOpen",
    "DeadlineRule",
    "EventKind",
    "HolidayPolicy",
    "MonthInPeriodOpen",
    "NthWorkdayOpen",
    "OpenRule",
    "Period",
    "ScheduleConfigError",
    "ScheduleSpec",
    "WeekdayOfMonthOpen",
    "load_schedules",
]

_OPEN_TAGS = frozenset({"nth_workday", "day_of_month", "weekday_of_month", "month_in_period", "cron"})


class ScheduleConfigError(ConfigError):
    """A ``[[schedules]]`` entry is invalid; the message names the entry and the offending key."""


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in override.items():
        old = merged.get(name)
        if (
            isinstance(old, Mapping)
            and isinstance(value, Mapping)
            and value.get("kind", old.get("kind")) == old.get("kind")
        ):
            merged[name] = _merge(old, value)  # same rule kind (or none): merge field by field
        else:
            merged[name] = value
    return merged


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] == "open" and parts[1] in _OPEN_TAGS:
        del parts[1]  # pydantic adds the union tag: open.nth_workday.n → open.n
    return ".".join(parts)


def _describe(where: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        path = _field_path(tuple(error["loc"]))
        lines.append(f"{where}: {path}: {message}" if path else f"{where}: {message}")
    return "\n".join(lines)


def _validate(data: Mapping[str, Any], where: str) -> ScheduleSpec:
    try:
        return ScheduleSpec.model_validate(data)
    except ValidationError as exc:
        raise ScheduleConfigError(_describe(where, exc)) from exc


def _entry_key(entry: object, where: str) -> str:
    if not isinstance(entry, Mapping):
        raise ScheduleConfigError(f"{where}: expected a table, got {type(entry).__name__}")
    key = entry.get("key")
    if not isinstance(key, str) or not key.strip():
        raise ScheduleConfigError(f"{where}: key: required (a lowercase ascii id such as 'dues')")
    return key


def load_schedules(
    config: Iterable[Mapping[str, Any]] | None,
    defaults: Iterable[ScheduleSpec] = DEFAULT_SCHEDULES,
) -> list[ScheduleSpec]:
    """Defaults overridden by key, new schedules appended, ``enabled = false`` removed.

    Raises ScheduleConfigError naming ``schedules[i] (key 'x')`` and the bad field.
    """
    merged: dict[str, dict[str, Any]] = {s.key: s.model_dump() for s in defaults}
    where_of: dict[str, str] = {}
    for index, entry in enumerate(config or ()):
        where = f"schedules[{index}]"
        key = _entry_key(entry, where)
        if key in where_of:
            raise ScheduleConfigError(f"{where} (key {key!r}): key: duplicate of {where_of[key]}")
        where_of[key] = f"{where} (key {key!r})"
        merged[key] = _merge(merged.get(key, {}), entry)
    specs = []
    for key, data in merged.items():
        where = where_of.get(key, f"default schedule {key!r}")
        if data.get("enabled", True) is False:
            continue
        specs.append(_validate(data, where))
    return specs
