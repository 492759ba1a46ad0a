"""Long-lived collaborators built once in the composition root and shared by handlers and jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.kv.base import KV
from bot.message import Platform
from bot.metrics import Metrics

if TYPE_CHECKING:
    from bot.domain.dues import DuesPolicy
    from bot.domain.workdays import WorkdayCalendar
    from bot.forms.spec import FormSpec
    from schedules.spec import ScheduleSpec


async def _no_quota_lines() -> list[str]:
    return []


async def _never_low(platform: Platform) -> bool:
    return False


@dataclass
class Services:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    kv: KV
    clock: Clock
    metrics: Metrics
    forms: dict[str, FormSpec]
    dues_policy: DuesPolicy
    calendar: WorkdayCalendar
    schedules: list[ScheduleSpec]
    enabled_platforms: frozenset[Platform] = field(default_factory=frozenset)
    # Platform monthly quotas, provided by the composition root from the adapters (handlers and jobs
    # never see an adapter): admins' usage lines for /stats, and "budget low (≥80 %) on this platform".
    quota_usage: Callable[[], Awaitable[list[str]]] = _no_quota_lines
    quota_low: Callable[[Platform], Awaitable[bool]] = _never_low

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def now(self) -> dt.datetime:
        return self.clock.now()

    def local_now(self) -> dt.datetime:
        return self.clock.now().astimezone(self.tz)
