"""Client-side rate limits: a token bucket for the app's OpenAPI calls and a 20/min window per custom robot.

Both limits are per process. The monthly quota counters live in the shared KV (``quota.py``), but QPS is
enforced per instance: two instances may together exceed ``qps``; DingTalk then answers with flow-control
codes, which map to RETRY. Both limiters wait (never drop) and take injectable time/sleep functions so
tests run without real waiting.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.errors import PlatformAPIError
from bot.platforms.dingtalk.errors import PLATFORM, ROBOT_BACKOFF_S

SleepFn = Callable[[float], Awaitable[None]]
NowFn = Callable[[], float]

ROBOT_PER_MINUTE = 20
ROBOT_WINDOW_S = 60.0


class TokenBucket:
    """``rate`` calls per second with bursts up to ``capacity``; callers queue FIFO behind one lock."""

    def __init__(
        self, rate: float, capacity: float | None = None, *, now: NowFn = time.monotonic,
        sleep: SleepFn = asyncio.sleep,
    ) -> None:
        self._rate = rate
        self._capacity = capacity if capacity is not None else max(1.0, rate)
        self._tokens = self._capacity
        self._now = now
        self._sleep = sleep
        self._stamp = now()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._now()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    async def acquire(self) -> None:
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                await self._sleep((1 - self._tokens) / self._rate)
                self._refill()
            self._tokens -= 1


class RobotThrottle:
    """At most 20 sends per rolling minute per robot URL; after 410100/130101 the robot rests 10 minutes.

    Exceeding 20/min makes DingTalk throttle the robot for 10 minutes (fact sheet §3.5), so we queue
    instead. During a back-off we fail fast with a retryable error rather than hold the caller 10 min.
    """

    def __init__(self, *, now: NowFn, sleep: SleepFn) -> None:
        self._now = now
        self._sleep = sleep
        self._sent: dict[str, collections.deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._blocked_until: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, robot: str) -> AsyncIterator[None]:
        """Hold the robot for one send. The send is stamped when it completes: DingTalk receives it no
        later than that, so our window never runs ahead of the server's. Sends to one robot are serial."""
        self._raise_if_blocked(robot)
        async with self._locks.setdefault(robot, asyncio.Lock()):
            sent = self._sent.setdefault(robot, collections.deque())
            while True:
                now = self._now()
                while sent and now - sent[0] >= ROBOT_WINDOW_S:
                    sent.popleft()
                if len(sent) < ROBOT_PER_MINUTE:
                    break
                await self._sleep(ROBOT_WINDOW_S - (now - sent[0]))
            self._raise_if_blocked(robot)  # a send before us may have tripped the 10-minute rest
            try:
                yield
            finally:
                sent.append(self._now())

    def back_off(self, robot: str) -> None:
        self._blocked_until[robot] = self._now() + ROBOT_BACKOFF_S

    def _raise_if_blocked(self, robot: str) -> None:
        remaining = self._blocked_until.get(robot, 0.0) - self._now()
        if remaining > 0:
            raise PlatformAPIError(PLATFORM, "robot.backoff", "custom robot throttled", retryable=True,
                                   retry_after=remaining)
