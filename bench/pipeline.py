"""CPU per answer of the inbound pipeline in-process (no HTTP): where the ingest figure comes from.

The same database as ``bench.ingest`` (300 branches x 50 members, an open dues collection each) on a
DISPOSABLE PostgreSQL database + Redis (or SQLite + the in-process KV). ``--concurrency`` messages are in
flight at once, as under load; each is a different member's first ``党费 50``. Prints answers per second,
CPU milliseconds per answer (this process: the bot's share alone), SQL statements and commits per answer.
The replies' delivery is not included (it runs after, outside the measurement).

    python -m bench.pipeline --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench_pipe \\
        --redis-url redis://127.0.0.1:6379/7 [--messages 3000] [--concurrency 64] [--trials 3] [--rate 300]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event

from bench.ingest import BRANCHES, PER_BRANCH, prepare_bot_db


async def trial(bot: Any, messages: int, concurrency: int, run: str, rate: float = 0.0) -> dict[str, float]:
    from bot.db.tables import InboundMessage, OutboxMessage, Response, ResponseRevision
    from bot.message import ConversationKind, IncomingMessage
    from bot.platforms.base import Platform

    async with bot.sessions() as session, session.begin():  # every answer a first answer again
        for table in (ResponseRevision, Response, OutboxMessage, InboundMessage):
            await session.execute(delete(table))
    now = dt.datetime.now(dt.UTC)
    msgs = []
    for i in range(messages):
        b, m = divmod(i % (BRANCHES * PER_BRANCH), PER_BRANCH)
        staff = f"bm-{b:03d}-{m:02d}"
        msgs.append(IncomingMessage(platform=Platform.DINGTALK, conversation_id=f"cid-{staff}",
                                    conversation_kind=ConversationKind.DIRECT, sender_id=staff, text="党费 50",
                                    message_id=f"{run}-{i}", received_at=now))
    counts = {"sql": 0}

    def count(*_: Any) -> None:
        counts["sql"] += 1

    engine = bot.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    commits_before = bot.services.metrics.value("dangjian_inbound_commits_total")
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(msg: Any) -> None:
        async with gate:
            await bot.inbound(msg)

    async def timed(msg: Any, due: float) -> None:
        await bot.inbound(msg)
        latencies.append(time.perf_counter() - due)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    if rate:  # open loop: message i is due at i / rate, latency counted from then
        tasks = []
        for i, msg in enumerate(msgs):
            due = wall0 + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(timed(msg, due)))
        await asyncio.gather(*tasks)
    else:
        await asyncio.gather(*(one(m) for m in msgs))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    event.remove(engine, "before_cursor_execute", count)
    commits = bot.services.metrics.value("dangjian_inbound_commits_total") - commits_before
    async with bot.sessions() as session:
        from sqlalchemy import func, select

        stored = (await session.execute(select(func.count()).select_from(Response))).scalar_one()
    if stored != messages:
        raise SystemExit(f"stored {stored} answers of {messages}")
    row = {"answers_per_s": messages / wall, "cpu_ms": 1000 * cpu / messages, "sql": counts["sql"] / messages,
           "commits": commits / messages}
    if latencies:
        q = statistics.quantiles(sorted(latencies), n=100, method="inclusive")
        row |= {"p50_ms": 1000 * q[49], "p99_ms": 1000 * q[98]}
    return row


async def run(args: argparse.Namespace) -> int:
    from bot.app import BotApp
    from bot.config import load_settings

    with tempfile.TemporaryDirectory(prefix="dj-bench-pipe-") as tmp:
        db_url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'dangjian.db'}"
        overrides = {"data_dir": tmp, "database.url": db_url, "redis.url": args.redis_url,
                     "scheduler.enabled": False, "log_level": "WARNING"}
        settings = load_settings(None, env={}, overrides=overrides)
        await prepare_bot_db(settings)
        bot = BotApp(settings, scheduler=False, background_dispatch=False)
        await bot.start()
        try:
            tag = secrets.token_hex(4)  # fresh message ids: the KV still remembers an earlier run's (dedup)
            await trial(bot, 300, args.concurrency, f"warm-{tag}")
            rows = [await trial(bot, args.messages, args.concurrency, f"t{t}-{tag}", args.rate)
                    for t in range(args.trials)]
        finally:
            await bot.stop()
    for key in [k for k in ("answers_per_s", "cpu_ms", "sql", "commits", "p50_ms", "p99_ms") if k in rows[0]]:
        values = [r[key] for r in rows]
        print(f"{key:>14}: median {statistics.median(values):8.3f}  all " + " ".join(f"{v:.3f}" for v in values))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="", help="a DISPOSABLE database (default: SQLite in a temp dir)")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop at this many messages/s (latency)")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
