"""`dangjian run --workers N`: several processes on one port (SO_REUSEPORT) over one PostgreSQL + Redis.

Real processes and sockets: the supervisor, its workers, the kernel spreading connections between them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bench.services import free_port
from bot.config import Settings
from bot.db.engine import create_engine, session_factory
from bot.db.tables import InboundMessage, Response

ROOT = Path(__file__).resolve().parents[1]
DEMO_MOBILES = [f"138000000{i:02d}" for i in (*range(1, 9), *range(11, 15))]  # the demo roster's twelve


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGJIAN_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _config(tmp_path: Path, settings: Settings) -> Path:
    path = tmp_path / "workers.toml"
    path.write_text("\n".join([
        f'data_dir = "{tmp_path / "data"}"', 'log_level = "WARNING"',
        "[database]", f'url = "{settings.database_url}"',
        "[redis]", f'url = "{settings.redis.url}"',
    ]) + "\n", encoding="utf-8")
    return path


def test_workers_refuse_sqlite_and_the_in_process_kv(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--workers", "2", "--data-dir", str(tmp_path / "data"),
         "--port", str(free_port())],
        cwd=ROOT, env=_env(), capture_output=True, timeout=60,
    )
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "server.workers > 1 needs PostgreSQL" in err and "Redis" in err
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())  # nothing started


async def _healthz(port: int) -> dict[str, Any]:
    # A new connection each time, so the kernel picks a worker each time.
    async with (aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as resp):
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def _wait_for_workers(port: int, proc: subprocess.Popen[bytes], count: int) -> set[int]:
    seen: set[int] = set()
    deadline = time.monotonic() + 90
    while len(seen) < count and time.monotonic() < deadline:
        assert proc.poll() is None, f"supervisor exited with {proc.returncode}"
        try:
            seen.add(int((await _healthz(port))["worker"]))
        except (aiohttp.ClientError, AssertionError):
            await asyncio.sleep(0.1)
    return seen


@dataclass
class Workers:
    proc: subprocess.Popen[bytes]  # the supervisor, leading its own process group
    port: int
    settings: Settings

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


@pytest.fixture
async def two_workers(settings_factory: Any, shared_backends: dict[str, str], tmp_path: Path) -> AsyncIterator[Workers]:
    """``dangjian run --workers 2`` on PostgreSQL + Redis, both workers answering."""
    settings = await settings_factory(**shared_backends)
    if settings.is_sqlite or not settings.redis.url:
        pytest.skip("workers need PostgreSQL + Redis")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(_config(tmp_path, settings)), "--port", str(port),
         "--workers", "2"],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        assert await _wait_for_workers(port, proc, 2) == {0, 1}
        yield Workers(proc, port, settings)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the workers go with their supervisor's group
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def test_two_workers_share_the_port_and_handle_each_message_once(two_workers: Workers) -> None:
    proc, port, settings = two_workers.proc, two_workers.port, two_workers.settings

    async def post(http: aiohttp.ClientSession, mobile: str) -> dict[str, Any]:
        body = {"conversation_id": f"dm:{mobile}", "sender_id": mobile, "text": "党费 50",
                "message_id": f"w-{mobile}"}
        async with http.post(f"http://127.0.0.1:{port}/api/local/messages", json=body) as resp:
            assert resp.status == 200
            answer: dict[str, Any] = await resp.json()
            return answer

    # Each message twice at once on separate connections (a redelivery racing the original), so the two
    # copies usually land on different workers.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        answers = await asyncio.gather(*(post(http, m) for m in DEMO_MOBILES for _ in range(2)))
    firsts = [a for a in answers if not a["duplicate"]]
    assert len(firsts) == len(DEMO_MOBILES)
    unregistered = [a["replies"] for a in firsts if "已登记" not in a["replies"][0]["text"]]
    assert not unregistered
    assert all(a["duplicate"] and not a["replies"] for a in answers if a not in firsts)

    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            stored = (await session.execute(select(func.count()).select_from(InboundMessage)
                                            .where(InboundMessage.message_id.like("w-%")))).scalar_one()
            answered = (await session.execute(select(func.count()).select_from(Response))).scalar_one()
        assert stored == len(DEMO_MOBILES) and answered == len(DEMO_MOBILES)
    finally:
        await engine.dispose()

    # SIGTERM stops the set: every worker finishes cleanly, the supervisor exits 0.
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]


async def test_a_dead_worker_stops_the_set(two_workers: Workers) -> None:
    proc, worker_pids = two_workers.proc, two_workers.pids()
    assert len(worker_pids) == 2
    os.kill(worker_pids[1], signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "exited (-9); stopping the others" in out.decode()
    for pid in worker_pids:  # the survivor was stopped too
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_workers_stop_when_the_supervisor_is_killed(two_workers: Workers) -> None:
    proc, worker_pids = two_workers.proc, two_workers.pids()
    proc.kill()  # no chance to stop them: the orphaned workers notice and stop by themselves
    proc.wait()
    deadline = time.monotonic() + 30
    alive = set(worker_pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
        await asyncio.sleep(0.2)
    assert not alive, "workers outlived their supervisor"
