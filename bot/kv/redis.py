"""Redis KV (redis.asyncio) for several instances sharing state."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
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
COMMAND_TIMEOUT_S = 2.0  # a stalled Redis must not stall the members' answers behind it
LOCK_FIRST_PAUSE_S = 0.005
LOCK_MAX_PAUSE_S = 0.1


class RedisKV:
    """Each command joins the pipeline of its event-loop turn: the commands that concurrent messages issue
    in one turn (dedup claims, conversation locks, dialogue state) go to Redis in one round trip, not one
    each. Alone, a command waits for nothing: its pipeline is sent on the next turn of the loop."""

    def __init__(self, url: str, prefix: str = "dj:") -> None:
        # No socket_timeout: with one, redis-py wraps every send in asyncio.wait_for, a new Task per
        # command on Python 3.11. Each pipeline is bounded with asyncio.timeout instead, a timer only; a
        # cancelled pipeline makes redis-py drop that connection.
        self._redis: Any = aioredis.from_url(url, decode_responses=True, socket_connect_timeout=COMMAND_TIMEOUT_S)
        self._prefix = prefix
        self._queued: list[tuple[Callable[[Any], object], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def _run(self, add: Callable[[Any], object]) -> Any:
        """Queue one command (``add`` puts it on a pipeline) for this turn's pipeline; its reply."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((add, future))
        if len(self._queued) == 1:
            loop.call_soon(self._send_queued)
        try:
            return await future
        except NoScriptError:
            raise
        except RedisError as exc:
            raise StorageUnavailable(f"redis: {exc!r}") from exc

    def _send_queued(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.create_task(self._send(batch), name="redis-pipeline")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Callable[[Any], object], asyncio.Future[Any]]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for add, _ in batch:
            add(pipe)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                replies = await pipe.execute(raise_on_error=False)
        except (RedisError, TimeoutError, OSError) as exc:
            replies = [StorageUnavailable(f"redis: {exc!r}") for _ in batch]
        except BaseException as exc:  # cancelled (shutdown): nobody may wait for ever
            for _, future in batch:
                if not future.done():
                    future.set_exception(StorageUnavailable(f"redis: {exc!r}"))
            raise
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def set_if_absent(self, key: str, value: str, ttl_seconds: float) -> bool:
        px = max(1, int(ttl_seconds * 1000))
        return bool(await self._run(lambda p: p.set(self._k(key), value, nx=True, px=px)))

    async def get(self, key: str) -> str | None:
        value = await self._run(lambda p: p.get(self._k(key)))
        return None if value is None else str(value)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        values = await self._run(lambda p: p.mget([self._k(key) for key in keys]))
        return [None if v is None else str(v) for v in values]

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        px = None if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        await self._run(lambda p: p.set(self._k(key), value, px=px))

    async def delete(self, key: str) -> None:
        await self._run(lambda p: p.delete(self._k(key)))

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        ttl_ms = "" if ttl_seconds is None else str(max(1, int(ttl_seconds * 1000)))
        return int(await self._script(_INCR, self._k(key), amount, ttl_ms))

    @asynccontextmanager
    async def _locked(self, key: str, timeout_seconds: float) -> AsyncIterator[None]:
        # SET NX PX with a random token, released only by its holder (compare-and-delete script).
        name, token = self._k("lock:" + key), secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + timeout_seconds, LOCK_FIRST_PAUSE_S
        while True:
            if await self._run(lambda p: p.set(name, token, nx=True, px=max(1, int(timeout_seconds * 1000)))):
                break
            if loop.time() >= deadline:
                raise TimeoutError(f"lock {key} not acquired")
            await asyncio.sleep(pause)  # the holder is usually one message's transaction: milliseconds
            pause = min(pause * 2, LOCK_MAX_PAUSE_S)
        try:
            yield
        finally:
            with contextlib.suppress(StorageUnavailable):  # expired or Redis gone: the TTL frees it
                await self._script(_RELEASE, name, token)

    async def _script(self, script: str, key: str, *args: Any) -> Any:
        """Run a Lua script on one key in one round trip (EVALSHA; loaded once per Redis server start).

        Not redis-py's Script objects: their ``__call__`` imports a module on every call, which was
        a tenth of the bot's CPU under load."""
        sha = _SHA[script]
        try:
            return await self._run(lambda p: p.evalsha(sha, 1, key, *args))
        except NoScriptError:
            await self._run(lambda p: p.script_load(script))
            return await self._run(lambda p: p.evalsha(sha, 1, key, *args))

    def lock(self, key: str, timeout_seconds: float = 30.0) -> AbstractAsyncContextManager[None]:
        return self._locked(key, timeout_seconds)

    async def ping(self) -> bool:
        try:
            return bool(await self._run(lambda p: p.ping()))
        except (StorageUnavailable, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()
