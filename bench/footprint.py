"""Footprint: start-up time to healthy, RSS idle, and RSS after a 20,000-member broadcast.

The bot runs as ``python -m bot run`` (embedded defaults: SQLite, in-process KV, local chat, demo branch)
in a child process. After it is healthy and idle, 20,000 members are added (one branch each of 50) and one
outbox row per member (a 1:1 notice on the local platform, exactly what a broadcast enqueues) is written;
the bot's dispatcher delivers them while we time it. Baseline, measured in the same run: a minimal aiohttp
app (one ``/healthz`` route) in the same interpreter, started and measured the same way.

    python -m bench.footprint [--members 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.services import free_port

ROOT = Path(__file__).resolve().parent.parent
MINIMAL_APP = """
import sys
from aiohttp import web
async def healthz(_): return web.json_response({"status": "ok"})
app = web.Application(); app.add_routes([web.get("/healthz", healthz)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGJIAN_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


async def start_and_wait(cmd: list[str], port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - started < 60:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text(errors="replace")[-2000:])
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc, time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.02)
    raise RuntimeError("not healthy within 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def enqueue_broadcast(db_url: str, members: int) -> None:
    from sqlalchemy import insert, select

    from bot.db.engine import create_engine, session_factory
    from bot.db.tables import Member, Org, OutboxMessage
    from bot.message import OutgoingMessage, Platform, Recipient

    engine = create_engine(db_url)
    sessions = session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    branches = (members + 49) // 50
    try:
        async with sessions() as session, session.begin():
            await session.execute(insert(Org), [{"name": "广播党委", "path": "广播党委", "kind": "committee",
                                                  "unit_type": "", "created_at": now}])
            parent = (await session.execute(select(Org.id).where(Org.path == "广播党委"))).scalar_one()
            await session.execute(insert(Org), [{"name": f"广播{b:04d}支部", "path": f"广播党委/广播{b:04d}支部",
                                                  "kind": "branch", "parent_id": parent, "unit_type": "",
                                                  "created_at": now} for b in range(branches)])
            orgs = [oid for (oid,) in (await session.execute(
                select(Org.id).where(Org.parent_id == parent).order_by(Org.id))).all()]
            await session.execute(insert(Member), [
                {"name": f"成员{i:05d}", "mobile": f"139{i:08d}", "org_id": orgs[i // 50], "roles": ",党员,",
                 "category": "在职", "active": True, "leave_reason": "", "created_at": now} for i in range(members)])
            text = "【通知】请全体党员于本周五前完成党费缴纳。回复“已交”即可登记。"
            payload = OutgoingMessage(Recipient(Platform.LOCAL, user_id="x"), text).to_json()
            await session.execute(insert(OutboxMessage), [
                {"platform": "local", "payload": payload | {"user_id": f"139{i:08d}"}, "status": "pending",
                 "attempts": 0, "next_attempt_at": now, "reason": "broadcast", "created_at": now, "last_error": ""}
                for i in range(members)])
    finally:
        await engine.dispose()


async def pending_count(db_url: str) -> int:
    """A plain read-only reader: the bot's engine would BEGIN IMMEDIATE (a write lock) and queue behind it."""
    import sqlite3

    path = db_url.split("///", 1)[1]

    def count() -> int:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            return int(conn.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()[0])

    return await asyncio.to_thread(count)


async def run(members: int) -> int:
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    rows = ["| process | start-up to healthy s | RSS idle MiB | RSS after broadcast MiB | peak RSS MiB | broadcast |",
            "|---|---:|---:|---:|---:|---|"]
    with tempfile.TemporaryDirectory(prefix="dj-bench-footprint-") as tmp:
        work = Path(tmp)
        port = free_port()
        proc, startup = await start_and_wait([sys.executable, "-c", MINIMAL_APP, str(port)], port, work / "min.log")
        await asyncio.sleep(2)
        idle, peak = rss_mb(proc.pid)
        stop(proc)
        rows.append(f"| baseline: minimal aiohttp app | {startup:.2f} | {idle:.0f} | - | {peak:.0f} | - |")
        print(rows[-1], flush=True)

        port = free_port()
        data = work / "data"
        db_url = f"sqlite+aiosqlite:///{(data / 'dangjian.db').as_posix()}"
        cmd = [sys.executable, "-m", "bot", "run", "--port", str(port), "--data-dir", str(data)]
        proc, startup = await start_and_wait(cmd, port, work / "bot.log")
        try:
            await asyncio.sleep(2)
            idle, _ = rss_mb(proc.pid)
            started = time.monotonic()
            await enqueue_broadcast(db_url, members)
            while (left := await pending_count(db_url)) > 0:
                if time.monotonic() - started > 600:
                    break
                await asyncio.sleep(0.2)
            took = time.monotonic() - started
            after, peak = rss_mb(proc.pid)
            note = f"{members} messages delivered in {took:.1f} s ({members / took:.0f}/s)" if not left else \
                f"{left} of {members} still pending after {took:.0f} s"
            rows.append(f"| dangjian-bot (SQLite, local chat) | {startup:.2f} | {idle:.0f} | {after:.0f} | "
                        f"{peak:.0f} | {note} |")
            print(rows[-1], flush=True)
        finally:
            stop(proc)
    print("\n" + "\n".join(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.members))


if __name__ == "__main__":
    sys.exit(main())
