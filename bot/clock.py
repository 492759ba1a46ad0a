"""Injected time: production uses SystemClock, tests a FakeClock they advance by hand."""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Current time, timezone-aware (UTC or the configured zone)."""
        ...


class SystemClock:
    def __init__(self, tz: dt.tzinfo = SHANGHAI) -> None:
        self.tz = tz

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)


class FakeClock:
    """A clock that only moves when told to (tests, schedule preview)."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def set(self, when: dt.datetime) -> None:
        self._now = when

    def advance(self, delta: dt.timedelta) -> None:
        self._now = self._now + delta
