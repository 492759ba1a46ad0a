"""Redis KV (redis.asyncio) for several instances sharing state."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.errors import StorageUnavailable


class RedisKV:
    def __init__(self, url: str, prefix: str = "dj:") -> None:
        self._redis: Any = aioredis.from_url(
            url, decode_responses=True, socket_connect_timeout=2, socket_timeout=2
        )
        self._prefix = prefix

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def set_if_absent(self, key: str, value: str, ttl_seconds: float) -> bool:
        try:
            return bool(await self._redis.set(self._k(key), value, nx=True, px=max(1, int(ttl_seconds * 1000))))
        except RedisError as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc

    async def get(self, key: str) -> str | None:
        try:
            value = await self._redis.get(self._k(key))
        except RedisError as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        try:
            if ttl_seconds is None:
                await self._redis.set(self._k(key), value)
            else:
                await self._redis.set(self._k(key), value, px=max(1, int(ttl_seconds * 1000)))
        except RedisError as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(self._k(key))
        except RedisError as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(self._k(key), amount)
                if ttl_seconds is not None:
                    # NX: the window starts when the counter is created (fixed window).
                    pipe.pexpire(self._k(key), max(1, int(ttl_seconds * 1000)), nx=True)
                results = await pipe.execute()
            return int(results[0])
        except RedisError as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc

    @asynccontextmanager
    async def _locked(self, key: str, timeout_seconds: float) -> AsyncIterator[None]:
        lock = self._redis.lock(self._k("lock:" + key), timeout=timeout_seconds, blocking_timeout=timeout_seconds)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc
        if not acquired:
            raise TimeoutError(f"lock {key} not acquired")
        try:
            yield
        finally:
            with contextlib.suppress(RedisError):  # expired or Redis gone: the TTL frees it
                await lock.release()

    def lock(self, key: str, timeout_seconds: float = 30.0) -> AbstractAsyncContextManager[None]:
        return self._locked(key, timeout_seconds)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()
