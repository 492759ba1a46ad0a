"""Ingest: signed DingTalk HTTP callbacks carrying ``党费 50`` answers, through the real bot, vs a baseline.

Bot: ``python -m bot run`` (DingTalk HTTP mode) as a child process on PostgreSQL + Redis (a private cluster
and a private redis-server, or ``--database-url``) and on SQLite + in-process KV; on PostgreSQL also as
``run --workers 2`` (``--workers 1,2``). The database holds 300 branches of 50 members, each branch with
an open dues collection; every request is a different member's first answer (a fresh message id), so
each one costs the bot a full inbound transaction (dedup claim, conversation lock, member lookup,
campaign, response + revision, reply in the outbox) plus, afterwards, the reply's delivery to a fake
DingTalk.

Baseline, measured in the same run on the same database: a minimal aiohttp handler that checks the same
signature and inserts one row per request (asyncpg / aiosqlite, no ORM).

Load: an open-loop aiohttp generator on loopback sends at a fixed offered rate; latency is measured from
each request's scheduled send time (so queueing behind a slow server counts), for ``--seconds`` per rate.

    python -m bench.ingest [--rates 200,1000] [--seconds 5] [--backends postgresql,sqlite] [--workers 1,2]
                           [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.services import PrivatePostgres, PrivateRedis, free_port
from bot.platforms.dingtalk.sign import compute_sign, verify_callback

ROOT = Path(__file__).resolve().parent.parent
APP_KEY, SECRET = "dingbenchapp", "bench-app-secret"
BRANCHES, PER_BRANCH = 300, 50  # enough members that each measured request is a first answer
GOAL_RATE, GOAL_P99_MS = 1000, 50.0
PROFILE_DIR = ""  # --profile: where py-spy writes the bot's collapsed stacks


# --- the baseline server ---------------------------------------------------------------------------


async def serve_baseline(db_url: str, port: int) -> None:
    from aiohttp import web

    if db_url.startswith("sqlite"):
        import aiosqlite

        path = db_url.split("///", 1)[1]
        conn = await aiosqlite.connect(path)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_baseline (id INTEGER PRIMARY KEY, msg_id TEXT UNIQUE,"
                           " body TEXT, received_at TEXT)")
        await conn.commit()
        lock = asyncio.Lock()

        async def insert(msg_id: str, body: str) -> None:
            async with lock:  # one connection, one writer: commit each row
                await conn.execute("INSERT INTO bench_baseline (msg_id, body, received_at) VALUES (?, ?, datetime('now'))"
                                   " ON CONFLICT (msg_id) DO NOTHING", (msg_id, body))
                await conn.commit()
    else:
        import asyncpg

        pool = await asyncpg.create_pool(db_url.replace("postgresql+asyncpg://", "postgresql://"), min_size=10,
                                         max_size=10)
        await pool.execute("CREATE TABLE IF NOT EXISTS bench_baseline (id BIGSERIAL PRIMARY KEY, msg_id TEXT UNIQUE,"
                           " body TEXT, received_at TIMESTAMPTZ)")

        async def insert(msg_id: str, body: str) -> None:
            await pool.execute("INSERT INTO bench_baseline (msg_id, body, received_at) VALUES ($1, $2, now())"
                               " ON CONFLICT (msg_id) DO NOTHING", msg_id, body)

    async def callback(request: web.Request) -> web.Response:
        try:
            verify_callback(request.headers.get("timestamp", ""), request.headers.get("sign", ""), SECRET,
                            int(time.time() * 1000))
        except Exception:  # noqa: BLE001
            return web.json_response({"errcode": 401}, status=401)
        raw = await request.read()
        try:
            msg_id = str(json.loads(raw)["msgId"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"errcode": 400}, status=400)
        await insert(msg_id, raw.decode("utf-8", "replace"))
        return web.json_response({"msgtype": "empty"})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=64 * 1024)
    app.add_routes([web.post("/dingtalk/callback", callback), web.get("/healthz", healthz)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# --- preparing the bot's database ---------------------------------------------------------------------


async def prepare_bot_db(settings: Any) -> None:
    """Schema, demo org, 300 branches x 50 members with DingTalk ids, and an open dues collection each."""
    import datetime as dt

    from sqlalchemy import insert, select

    from bot.app import BotApp
    from bot.db.tables import Member, Org

    bot = BotApp(settings, scheduler=False, background_dispatch=False)
    await bot.start()
    try:
        now = dt.datetime.now(dt.UTC)
        async with bot.sessions() as session, session.begin():
            if (await session.execute(select(Org.id).where(Org.name == "基准党委"))).first() is None:
                await session.execute(insert(Org), [{"name": "基准党委", "path": "基准党委", "kind": "committee",
                                                      "unit_type": "", "created_at": now}])
                parent = (await session.execute(select(Org.id).where(Org.path == "基准党委"))).scalar_one()
                await session.execute(insert(Org), [
                    {"name": f"基准第{b:03d}党支部", "path": f"基准党委/基准第{b:03d}党支部", "kind": "branch",
                     "parent_id": parent, "unit_type": "", "created_at": now} for b in range(BRANCHES)])
                orgs = dict((await session.execute(select(Org.name, Org.id).where(Org.parent_id == parent))).all())
                await session.execute(insert(Member), [
                    {"name": f"党员{b:03d}{m:02d}", "org_id": orgs[f"基准第{b:03d}党支部"], "roles": ",党员,",
                     "category": "在职", "dues_base_fen": 500_000, "active": True, "leave_reason": "",
                     "dingtalk_userid": f"bm-{b:03d}-{m:02d}", "created_at": now}
                    for b in range(BRANCHES) for m in range(PER_BRANCH)])
        await bot.runner.start_current("dues", bot.clock.now())
        await bot.flush_outbox()
    finally:
        await bot.stop()


# --- load ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    rate: int
    sent: int
    ok: int
    errors: dict[int, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    throughput: float  # answered requests per second over the run (first send to last answer)

    def row(self) -> str:
        errs = ",".join(f"{k}:{v}" for k, v in sorted(self.errors.items())) or "-"
        return (f"| {self.label} | {self.rate} | {self.sent} | {self.ok} | {errs} | {self.throughput:.0f} | "
                f"{self.p50_ms:.1f} | {self.p99_ms:.1f} | {self.max_ms:.0f} |")


def callback_body(i: int, run: str) -> bytes:
    b, m = divmod(i % (BRANCHES * PER_BRANCH), PER_BRANCH)
    staff = f"bm-{b:03d}-{m:02d}"
    body = {"msgtype": "text", "text": {"content": "党费 50"}, "msgId": f"{run}-{i}", "conversationType": "1",
            "conversationId": f"cid-{staff}", "senderStaffId": staff, "senderNick": staff, "isInAtList": True,
            "createAt": int(time.time() * 1000)}
    return json.dumps(body, ensure_ascii=False).encode()


async def open_loop(url: str, rate: int, seconds: float, run: str, label: str, start_index: int) -> Result:
    total = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=1024)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.2
        last_done = t0

        async def one(i: int, due: float) -> None:
            nonlocal last_done
            ts = str(int(time.time() * 1000))
            headers = {"Content-Type": "application/json; charset=utf-8", "timestamp": ts,
                       "sign": compute_sign(ts, SECRET)}
            try:
                async with http.post(url, data=callback_body(start_index + i, run), headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 599
            done = loop.time()
            last_done = max(last_done, done)
            if status == 200:
                latencies.append((done - due) * 1000)
            else:
                errors[status] = errors.get(status, 0) + 1

        tasks = []
        for i in range(total):
            due = t0 + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) >= 2 else [0.0] * 99
    return Result(label, rate, total, len(latencies), errors, q[49], q[98], latencies[-1] if latencies else 0.0,
                  len(latencies) / max(1e-9, last_done - t0))


# --- the two servers under test -----------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGJIAN_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


async def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, workers: int = 1) -> float:
    """Until ``/healthz`` answers from every worker (a new connection each time: the kernel picks one)."""
    started = time.monotonic()
    seen: set[object] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        while time.monotonic() - started < 60:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        seen.add((await resp.json()).get("worker"))
                        if len(seen) >= workers:
                            return time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not become healthy")


async def count_rows(db_url: str, table: str, prefix: str) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    column = "message_id" if table == "inbound_log" else "msg_id"
    if db_url.startswith("sqlite"):  # a plain reader: the bot's engine would BEGIN IMMEDIATE (a write lock)
        import sqlite3

        path = db_url.split("///", 1)[1]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            stmt = f"SELECT count(*) FROM {table} WHERE {column} LIKE ?"
            return int(conn.execute(stmt, (prefix + "%",)).fetchone()[0])
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            stmt = text(f"SELECT count(*) FROM {table} WHERE {column} LIKE :p")
            return int((await conn.execute(stmt, {"p": prefix + "%"})).scalar_one())
    finally:
        await engine.dispose()


async def bench_backend(name: str, db_url: str, redis_url: str, rates: list[int], seconds: float,
                        work: Path, workers: list[int]) -> list[str]:
    from bot.config import load_settings
    from tests.fakes.dingtalk_server import FakeDingTalk

    lines: list[str] = []
    work.mkdir(parents=True, exist_ok=True)
    async with FakeDingTalk(app_key=APP_KEY, app_secret=SECRET) as fake:
        dingtalk = {"enabled": True, "mode": "http", "app_key": APP_KEY, "app_secret": SECRET,
                    "api_base": fake.base_url, "oapi_base": fake.base_url, "public_url": "http://127.0.0.1",
                    "qps": 1000, "monthly_api_quota": 0, "monthly_push_quota": 0}
        overrides = {"data_dir": str(work / "data"), "database.url": db_url, "redis.url": redis_url,
                     "dingtalk": dingtalk, "scheduler.enabled": False, "log_level": "WARNING"}
        settings = load_settings(None, env={}, overrides=overrides)
        await prepare_bot_db(settings)
        config = work / f"bot-{name}.toml"
        port = free_port()
        config.write_text("\n".join([
            f'data_dir = {json.dumps(str(work / "data"))}', 'log_level = "WARNING"',
            "[server]", 'host = "127.0.0.1"', f"port = {port}",
            "[database]", f"url = {json.dumps(settings.database_url)}",
            "[redis]", f"url = {json.dumps(redis_url)}",
            "[scheduler]", "enabled = false",
            "[dingtalk]", *[f"{k} = {json.dumps(v)}" for k, v in dingtalk.items()],
        ]) + "\n", encoding="utf-8")
        servers = {
            "baseline": [sys.executable, "-m", "bench.ingest", "serve-baseline", "--db", settings.database_url,
                         "--port"],
        }
        # Several workers need PostgreSQL + Redis (SQLite has one writer, the in-process KV one process).
        for count in (workers if redis_url and not db_url.startswith("sqlite") else [1]):
            label = "bot" if count == 1 else f"bot x{count} workers"
            servers[label] = [sys.executable, "-m", "bot", "run", "--config", str(config), "--workers", str(count),
                              "--port"]
        results: list[Result] = []
        next_index = {"bot": 0, "baseline": 0}  # bot runs share the members: each request a first answer
        for label, cmd in servers.items():
            port = free_port()
            log = work / f"{label.replace(' ', '-')}-{name}.log"
            with log.open("wb") as out:
                wrap: list[str] = []
                if PROFILE_DIR and label.startswith("bot"):  # py-spy around the bot (--profile DIR)
                    wrap = ["py-spy", "record", "--subprocesses", "--nonblocking", "-r", "250", "--format", "raw",
                            "-o", str(Path(PROFILE_DIR) / f"{label.replace(' ', '-')}-{name}.txt"), "--"]
                proc = subprocess.Popen([*wrap, *cmd, str(port)], cwd=ROOT, env=_env(), stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=bool(wrap))
            try:
                await _wait_healthy(port, proc, log, int(cmd[cmd.index("--workers") + 1]) if "--workers" in cmd else 1)
                # Warm-up (connection pools, first queries, token): 100 requests at 50 req/s, not measured.
                kind = "bot" if label.startswith("bot") else "baseline"
                await open_loop(f"http://127.0.0.1:{port}/dingtalk/callback", 50, 2,
                                f"warm-{label.replace(' ', '-')}-{name}", "warm-up", next_index[kind])
                next_index[kind] += 100
                start_index = next_index[kind]
                for rate in rates:
                    run = f"{label.replace(' ', '-')}-{name}-{rate}"
                    started = time.monotonic()
                    res = await open_loop(f"http://127.0.0.1:{port}/dingtalk/callback", rate, seconds, run,
                                          f"{label} ({name})", start_index)
                    start_index += res.sent
                    next_index[kind] = start_index
                    table = "inbound_log" if label.startswith("bot") else "bench_baseline"
                    deadline = time.monotonic() + 120
                    while (stored := await count_rows(settings.database_url, table, run)) < res.ok:
                        if time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.2)
                    res.throughput = min(res.throughput, stored / max(1e-9, time.monotonic() - started))
                    results.append(res)
                    print(res.row() + f" stored {stored}", flush=True)
            finally:
                if wrap:  # SIGINT to the group: the bot stops, py-spy writes its file
                    os.killpg(proc.pid, signal.SIGINT)
                else:
                    proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    for res in results:
        lines.append(res.row())
    base_at_goal = [r for r in results if r.label.startswith("baseline") and r.rate == max(rates)]
    for b in (r for r in results if r.label.startswith("bot") and r.rate == max(rates)):
        if not base_at_goal:
            break
        base = base_at_goal[0]
        fast = b.throughput >= base.throughput * 0.95  # "equal", within this machine's run-to-run noise
        quick = b.p99_ms < GOAL_P99_MS
        meets = fast and quick and b.rate >= GOAL_RATE
        verdict = ('MET' if meets else 'NOT MET') if b.rate >= GOAL_RATE else 'NOT MEASURED (offered rate below the goal)'
        parts = (f"throughput {'met' if fast else 'not met'} ({b.throughput / base.throughput:.0%} of the baseline), "
                 f"p99 {'met' if quick else 'not met'}")
        lines.append(f"\n{b.label}: goal 'throughput >= baseline, p99 < {GOAL_P99_MS:.0f} ms at {GOAL_RATE} req/s': "
                     f"{verdict}: {parts} (bot {b.throughput:.0f} req/s p99 {b.p99_ms:.0f} ms; "
                     f"baseline {base.throughput:.0f} req/s p99 {base.p99_ms:.0f} ms, offered {b.rate} req/s)")
    return lines


HEADER = ("| server | offered req/s | sent | 200 OK | errors | throughput req/s (stored) | p50 ms | p99 ms | max ms |\n"
          "|---|---:|---:|---:|---|---:|---:|---:|---:|")


async def run(args: argparse.Namespace) -> int:
    rates = [int(r) for r in args.rates.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    print(f"offered rates {rates} req/s, {args.seconds:g} s each, open loop from one aiohttp client process")
    out: list[str] = [HEADER]
    with tempfile.TemporaryDirectory(prefix="dj-bench-ingest-") as tmp:
        work = Path(tmp)
        for name in backends:
            pg: PrivatePostgres | None = None
            redis: PrivateRedis | None = None
            try:
                if name == "postgresql":
                    db_url = args.database_url
                    if not db_url:
                        if reason := PrivatePostgres.available():
                            print(f"postgresql: skipped ({reason}); pass --database-url")
                            continue
                        pg = PrivatePostgres().init().start(durable=args.durable)
                        db_url = pg.url
                        print(f"private PostgreSQL, fsync {'on (production)' if args.durable else 'off'}")
                    if reason := PrivateRedis.available():
                        print(f"redis: not available ({reason}); using the in-process KV")
                        redis_url = ""
                    else:
                        redis = PrivateRedis().start()
                        redis_url = redis.url
                else:
                    db_url, redis_url = f"sqlite+aiosqlite:///{(work / 'sqlite' / 'dangjian.db').as_posix()}", ""
                    (work / "sqlite").mkdir(exist_ok=True)
                print(f"--- {name} ---", flush=True)
                out += await bench_backend(name, db_url, redis_url, rates, args.seconds, work / name,
                                           [int(w) for w in args.workers.split(",")])
            finally:
                if redis is not None:
                    redis.kill()
                if pg is not None:
                    pg.destroy()
    print("\n" + "\n".join(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve-baseline"])
    parser.add_argument("--rates", default="200,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--workers", default="1,2", help="bot processes on PostgreSQL + Redis (run --workers N)")
    parser.add_argument("--database-url", default="", help="a DISPOSABLE PostgreSQL database (default: private)")
    parser.add_argument("--durable", action=argparse.BooleanOptionalAction, default=True,
                        help="private PostgreSQL with fsync on, as in production (default); --no-durable: off")
    parser.add_argument("--profile", default="", help="record the bot with py-spy into this folder")
    parser.add_argument("--db", default="")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    global PROFILE_DIR
    PROFILE_DIR = args.profile
    if args.mode == "serve-baseline":
        asyncio.run(serve_baseline(args.db, args.port))
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
