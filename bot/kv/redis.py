"""Redis KV (redis.asyncio) for several instances sharing state."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from bot.errors import StorageUnavailable

# INCRBY, and start the window (PEXPIRE) only when the key has none yet: a fixed window.
_INCR = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_SHA = {script: hashlib.sha1(script.encode()).hexdigest() for script in (_INCR, _RELEASE)}
LOCK_FIRST_PAUSE_S = 0.005
LOCK_MAX_PAUSE_S = 0.1


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
        ttl_ms = "" if ttl_seconds is None else str(max(1, int(ttl_seconds * 1000)))
        try:
            return int(await self._script(_INCR, self._k(key), amount, ttl_ms))
        except RedisError as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc

    @asynccontextmanager
    async def _locked(self, key: str, timeout_seconds: float) -> AsyncIterator[None]:
        # SET NX PX with a random token, released only by its holder (compare-and-delete script).
        name, token = self._k("lock:" + key), secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + timeout_seconds, LOCK_FIRST_PAUSE_S
        while True:
            try:
                if await self._redis.set(name, token, nx=True, px=max(1, int(timeout_seconds * 1000))):
                    break
            except RedisError as exc:
                raise StorageUnavailable(f"redis: {exc}") from exc
            if loop.time() >= deadline:
                raise TimeoutError(f"lock {key} not acquired")
            await asyncio.sleep(pause)  # the holder is usually one message's transaction: milliseconds
            pause = min(pause * 2, LOCK_MAX_PAUSE_S)
        try:
            yield
        finally:
            with contextlib.suppress(RedisError):  # expired or Redis gone: the TTL frees it
                await self._script(_RELEASE, name, token)

    async def _script(self, script: str, key: str, *args: Any) -> Any:
        """Run a Lua script on one key in one round trip (EVALSHA; loaded once per Redis server start).

        Not redis-py's Script objects: their ``__call__`` imports a module on every call, which was
        a tenth of the bot's CPU under load."""
        sha = _SHA[script]
        try:
            return await self._redis.evalsha(sha, 1, key, *args)
        except NoScriptError:
            await self._redis.script_load(script)
            return await self._redis.evalsha(sha, 1, key, *args)

    def lock(self, key: str, timeout_seconds: float = 30.0) -> AbstractAsyncContextManager[None]:
        return self._locked(key, timeout_seconds)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()
