"""Shared fixtures: real storage backends (SQLite or PostgreSQL, memory KV or Redis), a fake clock,
and a running bot with the local chat served over real HTTP."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bench.services import PrivatePostgres, PrivateRedis
from bot.app import BotApp
from bot.clock import SHANGHAI, FakeClock
from bot.config import Settings, load_settings

PG_URL = os.environ.get("DANGJIAN_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("DANGJIAN_TEST_REDIS_URL", "")
REQUIRE = os.environ.get("DANGJIAN_TEST_REQUIRE_SERVICES") == "1"
LOCAL_REDIS = "redis://127.0.0.1:6379/15"
START = dt.datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_url_for_tests() -> str:
    """The Redis to test against: the CI's, else a local one if it runs; '' = none."""
    if REDIS_URL:
        return REDIS_URL
    return LOCAL_REDIS if _reachable("127.0.0.1", 6379) else ""


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"dangjian backends: database={'postgresql' if PG_URL else 'sqlite'} kv={'redis' if REDIS_URL else 'memory'}"
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


async def _reset_postgres(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def _reset_redis(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def settings_factory(tmp_path: Path) -> AsyncIterator[Any]:
    """Build Settings on the selected backends, with a clean database and KV for each test."""
    used_pg = False

    async def make(**overrides: Any) -> Settings:
        nonlocal used_pg
        values: dict[str, Any] = {"data_dir": str(tmp_path / "data")}
        if PG_URL:
            if not used_pg:
                await _reset_postgres(PG_URL)
                used_pg = True
            values["database.url"] = PG_URL
        if REDIS_URL:
            await _reset_redis(REDIS_URL)
            values["redis.url"] = REDIS_URL
        values.update(overrides)
        return load_settings(None, env={}, overrides=values)

    yield make


@pytest.fixture
async def settings(settings_factory: Any) -> Settings:
    return await settings_factory()


class Running:
    """A started bot plus an HTTP client on its web app."""

    def __init__(self, app: BotApp, client: TestClient) -> None:
        self.app = app
        self.client = client

    async def say(self, conversation_id: str, sender_id: str, text: str, message_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"conversation_id": conversation_id, "sender_id": sender_id, "text": text}
        if message_id:
            body["message_id"] = message_id
        resp = await self.client.post("/api/local/messages", json=body)
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        await self.app.flush_outbox()
        return data

    async def transcript(self, conversation_id: str, after: int = 0) -> list[dict[str, Any]]:
        resp = await self.client.get("/api/local/messages", params={"conversation_id": conversation_id, "after": after})
        assert resp.status == 200
        data = await resp.json()
        return list(data["messages"])


async def start_bot(settings: Settings, clock: FakeClock, **kwargs: Any) -> Running:
    app = BotApp(settings, clock, scheduler=False, background_dispatch=False, **kwargs)
    web_app = await app.start()
    client = TestClient(TestServer(web_app))
    await client.start_server()
    await app.flush_outbox()
    return Running(app, client)


async def stop_bot(running: Running) -> None:
    await running.client.close()
    await running.app.stop()


@pytest.fixture
async def bot(settings: Settings, clock: FakeClock) -> AsyncIterator[Running]:
    running = await start_bot(settings, clock)
    try:
        yield running
    finally:
        await stop_bot(running)


@pytest.fixture
def shared_backends() -> Any:
    """PostgreSQL + Redis for several instances: the CI's when selected, else private ones.

    SQLite is single-instance by design (README): two engines on one file queue on its write lock."""
    if PG_URL:
        yield {}
        return
    if (reason := PrivatePostgres.available() or PrivateRedis.available()):
        pytest.skip(f"two instances need PostgreSQL + Redis: {reason}")
    pg, redis = PrivatePostgres().init().start(), PrivateRedis().start()
    try:
        yield {"database.url": pg.url, "redis.url": redis.url}
    finally:
        redis.kill()
        pg.destroy()
