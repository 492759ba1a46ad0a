"""Rate pacing. WeCom silently drops what exceeds its limits, so we count before sending.

* ``MemberPacer``: app messages per member ≤30/min and ≤1000/h, as fixed windows in the shared KV (so
  every instance counts together). Members over a limit are deferred with a ``retry_after``, never
  dropped.
* ``WebhookLimiter``: ≤20 messages per minute per group-robot key, as a sliding window per process;
  callers queue (wait) for a slot. Whether WeCom's window slides is unknown, and sliding is the
  safer reading. Another instance sharing a key can still hit 45009, which becomes a RETRY.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Awaitable, Callable, Iterable

from bot.clock import Clock
from bot.kv.base import KV

Sleep = Callable[[float], Awaitable[None]]


class MemberPacer:
    def __init__(self, kv: KV, clock: Clock, scope: str, per_minute: int, per_hour: int) -> None:
        self._kv = kv
        self._clock = clock
        self._scope = scope
        self._windows = ((60, per_minute), (3600, per_hour))

    async def admit(self, users: Iterable[str], messages_each: int = 1) -> dict[str, float]:
        """Count ``messages_each`` sends for every user; returns ``{user: retry_after}`` for the deferred."""
        unique = list(dict.fromkeys(users))
        results = await asyncio.gather(*(self._admit_one(u, messages_each) for u in unique))
        return {u: wait for u, wait in zip(unique, results, strict=True) if wait is not None}

    async def _admit_one(self, user: str, amount: int) -> float | None:
        now = self._clock.now().timestamp()
        counted: list[str] = []
        for seconds, limit in self._windows:
            window = math.floor(now / seconds)
            key = f"wecom:pace:{self._scope}:{user.lower()}:{seconds}:{window}"
            value = await self._kv.incr(key, amount, ttl_seconds=seconds * 2)
            counted.append(key)
            if value > limit:
                for done in counted:  # not sent, so give the slots back
                    await self._kv.incr(done, -amount)
                return (window + 1) * seconds - now
        return None


class WebhookLimiter:
    def __init__(self, clock: Clock, sleep: Sleep, per_minute: int, window: float = 60.0) -> None:
        self._clock = clock
        self._sleep = sleep
        self._limit = per_minute
        self._window = window
        self._sent: dict[str, collections.deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, key: str, max_wait: float = math.inf) -> float | None:
        """Wait (queued per key) until ``key`` may send once more and take the slot; returns None.

        If the next slot is further away than ``max_wait``, takes nothing and returns that delay, so
        a long backlog becomes a RETRY instead of stalling the caller for many minutes."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            sent = self._sent.setdefault(key, collections.deque())
            while True:
                now = self._clock.now().timestamp()
                while sent and now - sent[0] >= self._window:
                    sent.popleft()
                if len(sent) < self._limit:
                    sent.append(now)
                    return None
                delay = sent[0] + self._window - now
                if delay > max_wait:
                    return delay
                await self._sleep(delay)
