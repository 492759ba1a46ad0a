"""Small runtime helpers: tracked background tasks and a lazily created shared ClientSession."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from bot.platforms.base import AdminAlert

log = logging.getLogger("bot.platforms.dingtalk")

SessionSource = aiohttp.ClientSession | Callable[[], aiohttp.ClientSession]


class TaskSet:
    """Background work that outlives a request: tasks are kept referenced until done, errors logged."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], label: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=label)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Let running work finish (bounded), then cancel what is left."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class SessionHolder:
    """One ClientSession for every call. A passed-in session belongs to the caller; a factory's to us."""

    def __init__(self, source: SessionSource) -> None:
        self._given: aiohttp.ClientSession | None = None
        self._factory: Callable[[], aiohttp.ClientSession] | None = None
        if isinstance(source, aiohttp.ClientSession):
            self._given = source
        else:
            self._factory = source
        self._own: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._given is not None:
            return self._given
        if self._own is None or self._own.closed:
            assert self._factory is not None
            self._own = self._factory()  # created lazily: a ClientSession needs the running loop
        return self._own

    async def close(self) -> None:
        if self._own is not None:
            await self._own.close()
            self._own = None


async def send_alert(alert: AdminAlert, key: str, text: str) -> None:
    """Tell the admins (the core dedupes by key); an alert failure must never fail the caller."""
    log.warning("dingtalk admin alert %s: %s", key, text)
    try:
        await alert(key, text)
    except Exception:
        log.exception("admin alert %s failed", key)
