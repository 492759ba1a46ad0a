"""Typed views of the config sections whose models live beside their owners (composition root).

``Settings`` keeps these sections as plain dicts so the core does not import every platform; these
functions validate them into the owners' models, naming the bad key on failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.domain.dues import DuesPolicy
    from bot.domain.workdays import WorkdayCalendar
    from bot.forms.spec import FormSpec
    from bot.platforms.dingtalk.settings import DingTalkSettings
    from bot.platforms.wecom.settings import WeComSettings
    from schedules.spec import ScheduleSpec

T = TypeVar("T")


def _checked(section: str, build: Callable[[], T]) -> T:
    try:
        return build()
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            key = ".".join(str(p) for p in (section, *err["loc"]))
            parts.append(f"{key}: {err['msg']}")
        raise ConfigError("; ".join(parts)) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{section}: {exc}") from exc


def dingtalk_settings(settings: Settings) -> DingTalkSettings:
    from bot.platforms.dingtalk.settings import DingTalkSettings

    return _checked("dingtalk", lambda: DingTalkSettings.model_validate(settings.dingtalk))


def wecom_settings(settings: Settings) -> WeComSettings:
    from bot.platforms.wecom.settings import WeComSettings

    return _checked("wecom", lambda: WeComSettings.model_validate(settings.wecom))


def form_specs(settings: Settings) -> dict[str, FormSpec]:
    from bot.forms.builtin import load_forms

    return _checked("forms", lambda: load_forms(settings.forms))


def schedule_specs(settings: Settings) -> list[ScheduleSpec]:
    from schedules.spec import load_schedules

    return _checked("schedules", lambda: load_schedules(settings.schedules))


def dues_policy(settings: Settings) -> DuesPolicy:
    from bot.domain.dues import DuesPolicy

    return _checked("dues", lambda: DuesPolicy.model_validate(settings.dues))


def workday_calendar(settings: Settings) -> WorkdayCalendar:
    from bot.domain.workdays import WorkdayCalendar

    cal = settings.calendar
    return WorkdayCalendar(
        extra_holidays=cal.extra_holidays,
        extra_workdays=cal.extra_workdays,
        allow_makeup_days=cal.allow_makeup_days,
    )


def validate_sections(settings: Settings) -> None:
    for check in (dingtalk_settings, wecom_settings, form_specs, schedule_specs, dues_policy):
        check(settings)


