"""Exactly once across instances and across a crash: two bots on one database and KV through a quarter,
and a SIGKILLed bot whose missed occurrence is caught up once within the grace window, skipped after it."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.clock import SHANGHAI, FakeClock
from bot.config import Settings
from bot.db.tables import OccurrenceClaim, OutboxMessage
from tests.conftest import PG_URL, start_bot, stop_bot

ROOT = Path(__file__).resolve().parents[1]


def local(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts).replace(tzinfo=SHANGHAI)


@pytest.mark.skipif(not PG_URL, reason="several instances need PostgreSQL (SQLite is the single-instance default)")
async def test_two_instances_send_each_occurrence_once(settings_factory: Any) -> None:
    settings = await settings_factory(**{"demo.announce_current": False})
    clock = FakeClock(local("2026-10-01T00:00:00"))
    first = await start_bot(settings, clock)
    second = await start_bot(settings, clock)  # same database and KV, no second seed
    try:
        end = local("2026-12-31T23:59:00")
        executed: list[list[str]] = [[], []]
        while (due := first.app.runner.next_due(clock.now())) is not None and due <= end:
            clock.set(due)
            reports = await asyncio.gather(first.app.runner.run_due(due), second.app.runner.run_due(due))
            for i, report in enumerate(reports):
                executed[i].extend(report.executed)
        assert executed[0] and executed[1] or executed[0] or executed[1]
        assert not set(executed[0]) & set(executed[1]), "an occurrence ran in both instances"
        async with first.app.sessions() as session:
            claims = (await session.execute(select(OccurrenceClaim.key, OccurrenceClaim.status))).all()
            rows = (await session.execute(select(OutboxMessage.created_at, OutboxMessage.reason, OutboxMessage.payload))).all()
        done = [k for k, status in claims if status == "done"]
        assert sorted(done) == sorted(executed[0] + executed[1])
        assert len(done) > 100  # a quarter of the default calendar for two branches
        # A duplicate execution would write the same message at the same moment twice.
        fingerprints = Counter((at, reason, str(sorted(p.items()))) for at, reason, p in rows)
        assert max(fingerprints.values()) == 1
    finally:
        await stop_bot(second)
        await stop_bot(first)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(tmp_path: Path, settings: Settings) -> Path:
    lines = [f'data_dir = "{tmp_path / "data"}"', "[database]", f'url = "{settings.database_url}"']
    if settings.redis.url:
        lines += ["[redis]", f'url = "{settings.redis.url}"']
    lines += ["[demo]", "announce_current = false"]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "bot exited"
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("bot did not become healthy")


async def test_sigkill_then_catch_up_within_grace_and_skip_after(settings_factory: Any, tmp_path: Path) -> None:
    settings = await settings_factory(**{"demo.announce_current": False, "scheduler.grace_minutes": 120})
    port = _free_port()
    config = _write_config(tmp_path, settings)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        await _wait_healthy(port, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    # Restart after the next due time, within the grace window: the missed event runs once.
    probe = FakeClock(dt.datetime.now(SHANGHAI))
    bot = await start_bot(settings, probe)
    try:
        missed = bot.app.runner.next_due(probe.now())
        assert missed is not None
        probe.set(missed + dt.timedelta(minutes=30))
        caught = await bot.app.runner.run_due(probe.now())
        assert any(key for key in caught.executed), "the missed occurrence was caught up"
        again = await bot.app.runner.run_due(probe.now())
        assert not again.executed and again.already_claimed >= len(caught.executed)

        # The next one is missed by more than the grace window: recorded as skipped, nothing sent.
        later = bot.app.runner.next_due(probe.now())
        assert later is not None
        probe.set(later + dt.timedelta(minutes=121))
        async with bot.app.sessions() as session:
            before = len((await session.execute(select(OutboxMessage.id))).all())
        skipped = await bot.app.runner.run_due(probe.now())
        assert skipped.skipped_late
        async with bot.app.sessions() as session:
            statuses = dict((await session.execute(select(OccurrenceClaim.key, OccurrenceClaim.status))).all())
            after_rows = (await session.execute(select(OutboxMessage.id, OutboxMessage.created_at))).all()
        assert all(statuses[k] == "skipped_late" for k in skipped.skipped_late)
        # Events inside the window at that moment may run; none of the skipped ones produced messages.
        new_rows = [r for r in after_rows if r.created_at == probe.now()]
        assert len(after_rows) - before == len(new_rows)
        if not skipped.executed:
            assert not new_rows
    finally:
        await stop_bot(bot)
