"""In-process KV for a single instance (the embedded default)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from bot.clock import Clock, SystemClock


class MemoryKV:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._data: dict[str, tuple[str, float | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._now():
            del self._data[key]
            return None
        return value

    def _expiry(self, ttl_seconds: float | None) -> float | None:
        return None if ttl_seconds is None else self._now() + ttl_seconds

    async def set_if_absent(self, key: str, value: str, ttl_seconds: float) -> bool:
        if self._live(key) is not None:
            return False
        self._data[key] = (value, self._expiry(ttl_seconds))
        return True

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [self._live(key) for key in keys]

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        self._data[key] = (value, self._expiry(ttl_seconds))

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        current = self._live(key)
        if current is None:
            new = amount
            self._data[key] = (str(new), self._expiry(ttl_seconds))
        else:
            new = int(current) + amount
            self._data[key] = (str(new), self._data[key][1])
        return new

    @asynccontextmanager
    async def _locked(self, key: str, timeout_seconds: float) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with asyncio.timeout(timeout_seconds):
            await lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def lock(self, key: str, timeout_seconds: float = 30.0) -> AbstractAsyncContextManager[None]:
        return self._locked(key, timeout_seconds)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()
