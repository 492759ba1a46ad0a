"""Reports on 20,000 members: /stats, /missing and /export through the running bot vs hand-written SQL.

Data: ``bench.orggen`` (800 branches x 25 members, 12 months of dues campaigns with ~85-95 % answers, theme
days) in PostgreSQL ``bench9`` (or ``--url``), KV in Redis db 7 (or ``--redis-url ''`` for in-process).

Bot: a running ``BotApp`` (scheduler off) serving its web app on a loopback port; each operation is one
HTTP POST to the local chat ``/api/local/messages``, timed from send to JSON answer:

- ``/stats`` by the admin: all 800 branches, the newest dues collection of each, ranked;
- ``/missing`` by a secretary: their branch's newest collection, who has not answered;
- ``/export 党费 2026`` by the admin: the 党费收缴登记表 for all branches (801 sheets, 20,000 rows) written as
  XLSX; the ledger build (``build_ledger``) and the XLSX write (``save_ledger``) are timed on their own too.
  The goal applies to the whole HTTP round trip, file included.

Baseline, in the same run through the same engine: hand-written SQL with GROUP BY that computes the same
figures (counts, money, names, the member x month grid). Each operation runs once to warm up, then
``--repeat`` times; medians are printed. Figures of the bot and of the SQL are checked to agree; for the
export also the figures read back (openpyxl) from the XLSX file the bot wrote, once after the timed runs.

    python -m bench.stats_20k [--repeat 5] [--export-repeat 3] [--url ...] [--redis-url ...]
                              [--profile DIR] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import Date, bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

import handlers.reports as report_handlers
from bench.orggen import DEFAULT_URL, Generated, OrgSpec, generate, reset_database
from bench.services import free_port
from bot.app import BotApp
from bot.clock import SHANGHAI, FakeClock
from bot.config import load_settings
from bot.context import HandlerContext
from bot.db.members import find_by_platform_id
from bot.db.tables import Org, UTCDateTime
from bot.message import ConversationKind, IncomingMessage, Platform

DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
NOW = dt.datetime(2026, 12, 10, 10, 0, tzinfo=SHANGHAI)  # December's dues collection is open
GOAL_RATIO = 2.0


# ---- hand-written SQL ------------------------------------------------------------------------------


def _agg(dialect: str, expr: str) -> str:
    return f"string_agg({expr}, '、' ORDER BY m.id)" if dialect == "postgresql" else f"group_concat({expr}, '、')"


def _params(sql: str) -> Any:
    return text(sql).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("day", type_=Date()))


STATS_SQL = """
WITH latest AS (
  SELECT id, org_id FROM (
    SELECT c.id, c.org_id, ROW_NUMBER() OVER (PARTITION BY c.org_id ORDER BY c.opened_at DESC, c.id DESC) AS rn
    FROM campaigns c JOIN orgs b ON b.id = c.org_id AND b.kind = 'branch'
    WHERE c.form_key = 'dues' AND c.opened_at <= :now
  ) t WHERE rn = 1
)
SELECT l.org_id, o.name,
       SUM(CASE WHEN r.id IS NOT NULL OR m.leave_until IS NULL OR m.leave_until < :day THEN 1 ELSE 0 END) AS total,
       COUNT(r.id) AS answered,
       COALESCE(SUM(r.amount_fen), 0) AS amount,
       SUM(CASE WHEN r.late THEN 1 ELSE 0 END) AS late,
       SUM(CASE WHEN r.flagged THEN 1 ELSE 0 END) AS flagged
FROM latest l
JOIN orgs o ON o.id = l.org_id
JOIN members m ON m.org_id = l.org_id AND m.active
LEFT JOIN responses r ON r.campaign_id = l.id AND r.member_id = m.id
GROUP BY l.org_id, o.name
"""


def missing_sql(dialect: str) -> str:
    leave = "(m.leave_until IS NOT NULL AND m.leave_until >= :day)"
    return f"""
WITH latest AS (
  SELECT id FROM campaigns WHERE org_id = :org AND form_key = 'dues' AND opened_at <= :now
  ORDER BY opened_at DESC, id DESC LIMIT 1
)
SELECT SUM(CASE WHEN r.id IS NOT NULL OR NOT {leave} THEN 1 ELSE 0 END) AS total,
       COUNT(r.id) AS answered,
       SUM(CASE WHEN r.id IS NULL AND NOT {leave} THEN 1 ELSE 0 END) AS missing,
       {_agg(dialect, f"CASE WHEN r.id IS NULL AND NOT {leave} THEN m.name END")} AS missing_names,
       {_agg(dialect, f"CASE WHEN r.id IS NULL AND {leave} THEN m.name END")} AS leave_names
FROM latest l
JOIN members m ON m.org_id = :org AND m.active
LEFT JOIN responses r ON r.campaign_id = l.id AND r.member_id = m.id
"""


def _pivot() -> str:
    return ",\n       ".join(
        f"SUM(CASE WHEN p.mm = '{m:02d}' THEN p.amount_fen END) AS m{m:02d}" for m in range(1, 13)
    )


EXPORT_SQL = f"""
WITH paid AS (
  SELECT r.member_id, c.org_id, substr(c.period, 6, 2) AS mm, r.amount_fen, r.late, r.flagged,
         CASE WHEN r.entered_by <> r.member_id THEN r.entered_by END AS proxy
  FROM responses r
  JOIN campaigns c ON c.id = r.campaign_id
  JOIN orgs b ON b.id = c.org_id AND b.kind = 'branch'
  WHERE c.form_key = 'dues' AND (c.period = '2026' OR c.period LIKE '2026-%')
)
SELECT m.org_id, m.id, m.name, m.category, m.dues_base_fen, m.created_at,
       {_pivot()},
       COALESCE(SUM(p.amount_fen), 0) AS paid,
       COUNT(DISTINCT p.mm) AS months_paid,
       SUM(CASE WHEN p.late THEN 1 ELSE 0 END) AS late,
       SUM(CASE WHEN p.flagged THEN 1 ELSE 0 END) AS flagged,
       MAX(p.proxy) AS proxy
FROM members m
JOIN orgs o ON o.id = m.org_id AND o.kind = 'branch'
LEFT JOIN paid p ON p.member_id = m.id AND p.org_id = m.org_id
WHERE m.active OR p.member_id IS NOT NULL
GROUP BY m.org_id, m.id, m.name, m.category, m.dues_base_fen, m.created_at
ORDER BY m.org_id, m.id
"""

EXPORT_MONTHS_SQL = """
SELECT c.org_id, substr(c.period, 1, 7) AS month, COUNT(*) AS n
FROM campaigns c JOIN orgs b ON b.id = c.org_id AND b.kind = 'branch'
WHERE c.form_key = 'dues' AND (c.period = '2026' OR c.period LIKE '2026-%')
GROUP BY c.org_id, substr(c.period, 1, 7)
"""


async def raw_stats(engine: AsyncEngine, gen: Generated) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = (await conn.execute(_params(STATS_SQL), {"now": NOW, "day": NOW.date()})).all()
    return {"branches": len(rows), "answered": sum(int(r.answered) for r in rows),
            "total": sum(int(r.total) for r in rows), "amount": sum(int(r.amount) for r in rows)}


async def raw_missing(engine: AsyncEngine, gen: Generated, org_id: int) -> dict[str, int]:
    async with engine.connect() as conn:
        row = (await conn.execute(_params(missing_sql(engine.dialect.name)),
                                  {"now": NOW, "day": NOW.date(), "org": org_id})).one()
    return {"missing": int(row.missing or 0), "total": int(row.total or 0), "answered": int(row.answered or 0)}


async def raw_export(engine: AsyncEngine, gen: Generated) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(EXPORT_SQL))).all()
        months = (await conn.execute(text(EXPORT_MONTHS_SQL))).all()
    return {"rows": len(rows), "paid": sum(int(r.paid) for r in rows), "org_months": len(months),
            "branch_sheets": len({r.org_id for r in rows})}


# ---- driving the bot -------------------------------------------------------------------------------


@dataclass
class Timings:
    bot: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    xlsx: list[float] = field(default_factory=list)
    ledger: list[float] = field(default_factory=list)
    handler: list[float] = field(default_factory=list)  # the command's own work, in-process (see Harness)
    bot_figures: dict[str, int] = field(default_factory=dict)
    raw_figures: dict[str, int] = field(default_factory=dict)
    file_figures: dict[str, int] = field(default_factory=dict)  # export: read back from the XLSX file

    def agree(self) -> bool:
        figures = {**self.bot_figures, **self.file_figures}
        return all(self.raw_figures.get(k) == v for k, v in figures.items() if k in self.raw_figures)


class Harness:
    """The bot on a loopback port, plus timing hooks around the export's ledger build and XLSX write."""

    def __init__(self, app: BotApp, base_url: str, http: aiohttp.ClientSession) -> None:
        self.app = app
        self.base_url = base_url
        self.http = http
        self.last_xlsx_s = 0.0
        self.last_ledger_s = 0.0
        self.last_ledger: Any = None
        self.last_path: Path | None = None

    def hook_export(self) -> Callable[[], None]:
        save, build = report_handlers.save_ledger, report_handlers.build_ledger

        async def timed_save(ledger: Any, path: Path) -> Path:
            began = time.perf_counter()
            try:
                self.last_path = await save(ledger, path)
                return self.last_path
            finally:
                self.last_xlsx_s = time.perf_counter() - began

        async def timed_build(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                self.last_ledger = await build(*args, **kwargs)
                return self.last_ledger
            finally:
                self.last_ledger_s = time.perf_counter() - began

        report_handlers.save_ledger = timed_save  # type: ignore[assignment]
        report_handlers.build_ledger = timed_build  # type: ignore[assignment]

        def undo() -> None:
            report_handlers.save_ledger, report_handlers.build_ledger = save, build

        return undo

    async def handler_time(self, sender: str, text_: str) -> float:
        """The command's own work, as the pipeline runs it but without the message's storage: a session
        (connection checkout) and ``router.dispatch`` (scope check, the report's queries, the reply
        text). The sender's member row (and branch) is looked up beforehand, as the pipeline does for
        every message;
        the transaction is rolled back (the outbox row is not written)."""
        app = self.app
        async with app.sessions() as session:
            member = await find_by_platform_id(session, Platform.LOCAL, sender)
            assert member is not None
            branch = await session.get(Org, member.org_id)  # loaded with the member, as in the pipeline
        msg = IncomingMessage(platform=Platform.LOCAL, conversation_id=f"dm:{sender}",
                              conversation_kind=ConversationKind.DIRECT, sender_id=sender, text=text_,
                              message_id=uuid.uuid4().hex, received_at=app.clock.now(), is_to_me=True)
        began = time.perf_counter()
        async with app.sessions() as session, session.begin():
            session.info.setdefault("kept", []).append(await session.merge(branch, load=False))
            ctx = HandlerContext(msg=msg, member=await session.merge(member, load=False), session=session,
                                 services=app.services, router=app.router, now=app.clock.now(), text=text_)
            await app.router.dispatch(ctx)
            elapsed = time.perf_counter() - began
            await session.rollback()
        if not ctx.replies:
            raise RuntimeError(f"{text_!r} gave no reply in-process")
        return elapsed

    async def say(self, sender: str, text_: str) -> tuple[float, list[str]]:
        body = {"conversation_id": f"dm:{sender}", "sender_id": sender, "text": text_, "message_id": uuid.uuid4().hex}
        began = time.perf_counter()
        async with self.http.post(f"{self.base_url}/api/local/messages", json=body) as resp:
            data = await resp.json()
            status = resp.status
        elapsed = time.perf_counter() - began
        if status != 200:
            raise RuntimeError(f"{text_!r}: HTTP {status} {data}")
        await self.app.flush_outbox()  # deliver the replies (not timed) so the outbox stays small
        return elapsed, [r["text"] for r in data["replies"]]


def _stats_figures(replies: list[str]) -> dict[str, int]:
    reply = "\n".join(replies)
    total = re.search(r"合计：已填报 (\d+)/(\d+)", reply)
    branches = re.search(r"（(\d+)个支部，按完成率排序）", reply)
    if not total or not branches:
        raise RuntimeError(f"/stats answered unexpectedly: {reply[:300]}")
    return {"branches": int(branches.group(1)), "answered": int(total.group(1)), "total": int(total.group(2))}


def _missing_figures(replies: list[str]) -> dict[str, int]:
    reply = "\n".join(replies)
    m = re.search(r"尚未填报 (\d+)/(\d+) 人", reply)
    if m:
        return {"missing": int(m.group(1)), "total": int(m.group(2))}
    done = re.search(r"已全部填报 ✔（(\d+)/(\d+)）", reply)
    if done:
        return {"missing": 0, "total": int(done.group(2))}
    raise RuntimeError(f"/missing answered unexpectedly: {reply[:300]}")


def _export_figures(h: Harness, replies: list[str]) -> dict[str, int]:
    reply = "\n".join(replies)
    if "已生成" not in reply:
        raise RuntimeError(f"/export answered unexpectedly: {reply[:300]}")
    ledger = h.last_ledger
    branch_sheets = [s for s in ledger.sheets if s.branch]
    rows = sum(len(s.rows) for s in branch_sheets)
    paid_col = next(i for i, c in enumerate(branch_sheets[0].columns) if c.header == "实交（元）")
    paid = sum(int(s.totals[paid_col]) for s in branch_sheets)
    h.last_ledger = None  # a real bot keeps nothing: do not let the next run's GC walk this one
    return {"rows": rows, "paid": paid, "sheets": len(ledger.sheets)}


def xlsx_figures(path: Path) -> dict[str, int]:
    """Member rows and the money paid (branch sheets' totals rows), read back from the XLSX file itself."""
    from decimal import Decimal

    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    rows = paid_fen = branch_sheets = 0
    try:
        for ws in book.worksheets:
            values = list(ws.iter_rows(min_row=3, values_only=True))
            header = list(values[0])
            if "姓名" not in header:
                continue  # the summary sheet
            branch_sheets += 1
            body, totals = values[1:-1], values[-1]
            rows += sum(1 for row in body if isinstance(row[0], int))
            paid_fen += int(Decimal(str(totals[header.index("实交（元）")])) * 100)
    finally:
        book.close()
    return {"rows": rows, "paid": paid_fen, "sheets": len(book.sheetnames), "branch_sheets": branch_sheets}


async def measure(
    label: str, repeat: int, bot_op: Callable[[], Awaitable[tuple[float, dict[str, int]]]],
    raw_op: Callable[[], Awaitable[dict[str, int]]], h: Harness, profile_dir: Path | None,
    handler_op: Callable[[], Awaitable[float]] | None = None,
) -> Timings:
    t = Timings()
    await bot_op()  # warm-up (plans, caches)
    await raw_op()
    if handler_op is not None:
        await handler_op()
    if profile_dir is not None:
        await profile(label, bot_op, profile_dir)
    for _ in range(repeat):
        seconds, t.bot_figures = await bot_op()
        t.bot.append(seconds)
        t.xlsx.append(h.last_xlsx_s)
        t.ledger.append(h.last_ledger_s)
        began = time.perf_counter()
        t.raw_figures = await raw_op()
        t.raw.append(time.perf_counter() - began)
        if handler_op is not None:
            t.handler.append(await handler_op())
    return t


async def profile(label: str, bot_op: Callable[[], Awaitable[Any]], out: Path) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("  (pyinstrument not installed: pip install pyinstrument)", flush=True)
        return
    profiler = Profiler(async_mode="enabled")
    profiler.start()
    await bot_op()
    profiler.stop()
    out.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_") or "op"
    (out / f"{name}.txt").write_text(profiler.output_text(unicode=True, show_all=False), encoding="utf-8")
    print(f"  profile of {label}: {out / (name + '.txt')}", flush=True)


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def render(rows: list[tuple[str, Timings]], floor: list[float], gen: Generated, backend: str, kv: str,
           repeat: int, export_repeat: int) -> str:
    out = [
        f"Reports on {gen.counts['members']:,} members / {gen.counts['branches']} branches / "
        f"{gen.counts['dues_responses']:,} dues answers ({backend}, KV {kv}); clock {NOW.isoformat()}",
        f"bot = HTTP POST /api/local/messages on a running BotApp, median of {repeat} "
        f"(export: {export_repeat}); raw SQL = hand-written GROUP BY via the same engine, same run",
        "",
        f"{'operation':<52}{'bot ms':>10}{'raw SQL ms':>12}{'ratio':>8}  goal ≤{GOAL_RATIO:.1f}x",
        "-" * 94,
    ]
    for label, t in rows:
        bot, raw = _ms(t.bot), _ms(t.raw)
        if label.startswith("/export"):
            xlsx, ledger = _ms(t.xlsx), _ms(t.ledger)
            without = _ms([b - x for b, x in zip(t.bot, t.xlsx, strict=True)])
            ok = "ok" if bot / raw <= GOAL_RATIO else "MISSED"
            total = label.replace(", XLSX)", ")") + " HTTP total"
            out.append(f"{total:<52}{bot:>10.0f}{raw:>12.1f}{bot / raw:>8.2f}  {ok}")
            out.append(f"{'  of which ledger build (build_ledger)':<52}{ledger:>10.0f}{'':>12}{'':>8}")
            out.append(f"{'  of which XLSX write (save_ledger)':<52}{xlsx:>10.0f}{'—':>12}{'':>8}")
            out.append(f"{'  HTTP minus XLSX write':<52}{without:>10.0f}{raw:>12.1f}{without / raw:>8.2f}")
        else:
            ok = "ok" if bot / raw <= GOAL_RATIO else "MISSED"
            out.append(f"{label:<52}{bot:>10.1f}{raw:>12.1f}{bot / raw:>8.2f}  {ok}")
            if t.handler:
                own = _ms(t.handler)
                mark = "ok" if own / raw <= GOAL_RATIO else "MISSED"
                out.append(f"{'  the command itself (handler, in-process)':<52}{own:>10.1f}{raw:>12.1f}{own / raw:>8.2f}  {mark}")
    out.append(f"{'(pipeline floor: /help, no report query)':<52}{_ms(floor):>10.1f}")
    out.append("")
    out.append("HTTP = the whole chat round trip: dedup claim, member lookup, inbound log, the command, the reply in")
    out.append("the outbox, commit. The command itself = a session and the handler (scope check, its queries, the")
    out.append("reply text) for the same sender and text, in-process: what the raw SQL stands in for.")
    out.append("")
    for label, t in rows:
        shown = ", ".join(f"{k} {v:,}" for k, v in t.bot_figures.items())
        if t.file_figures:
            shown += "; in the XLSX file: " + ", ".join(f"{k} {v:,}" for k, v in t.file_figures.items())
        out.append(f"figures {label}: {shown} — {'agree with the SQL' if t.agree() else 'DIFFER: ' + str(t.raw_figures)}")
    return "\n".join(out)


async def run(args: argparse.Namespace) -> int:
    began = time.monotonic()
    spec = OrgSpec()
    print(f"generating the organisation in {args.url} ...", flush=True)
    gen = await generate(args.url, spec)
    print(f"  {gen.summary()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-stats-"))
    clock = FakeClock(NOW)
    settings = load_settings(None, env={}, overrides={
        "data_dir": str(tmp / "data"), "database.url": args.url, "redis.url": args.redis_url or None,
        "demo.seed": False, "demo.announce_current": False, "scheduler.enabled": False, "log_level": "WARNING",
    })  # fmt: skip
    app = BotApp(settings, clock, scheduler=False, background_dispatch=False)
    web_app = await app.start()
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    results: list[tuple[str, Timings]] = []
    worst = 0
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
            h = Harness(app, f"http://127.0.0.1:{port}", http)
            undo = h.hook_export()
            try:
                admin = gen.admin.mobile
                org_id = gen.branch_ids[len(gen.branch_ids) // 2]
                secretary = gen.secretaries[org_id].mobile

                async def stats() -> tuple[float, dict[str, int]]:
                    seconds, replies = await h.say(admin, "/stats")
                    return seconds, _stats_figures(replies)

                async def missing() -> tuple[float, dict[str, int]]:
                    seconds, replies = await h.say(secretary, "/missing")
                    return seconds, _missing_figures(replies)

                async def export() -> tuple[float, dict[str, int]]:
                    seconds, replies = await h.say(admin, "/export 党费 2026")
                    return seconds, _export_figures(h, replies)

                ops: list[tuple[str, int, Any, Any, Any]] = [
                    ("/stats (admin, 800 branches)", args.repeat, stats, lambda: raw_stats(app.engine, gen),
                     lambda: h.handler_time(admin, "/stats")),
                    ("/missing (secretary, 1 branch)", args.repeat, missing,
                     lambda: raw_missing(app.engine, gen, org_id), lambda: h.handler_time(secretary, "/missing")),
                    ("/export 党费 2026 (admin, 800 branches, XLSX)", args.export_repeat, export,
                     lambda: raw_export(app.engine, gen), None),
                ]
                for label, repeat, bot_op, raw_op, handler_op in ops:
                    if args.only and not any(word in label for word in args.only.split(",")):
                        continue
                    print(f"timing {label} ...", flush=True)
                    h.last_xlsx_s = h.last_ledger_s = 0.0
                    timings = await measure(label, repeat, bot_op, raw_op, h, args.profile, handler_op)
                    if bot_op is export and h.last_path is not None:
                        timings.file_figures = await asyncio.to_thread(xlsx_figures, h.last_path)
                    results.append((label, timings))
                floor = []
                for _ in range(args.repeat + 1):
                    floor.append((await h.say(admin, "/help"))[0])
                floor = floor[1:]
            finally:
                undo()
    finally:
        await runner.cleanup()
        await app.stop()
        if not args.keep:
            await reset_database(args.url)
            shutil.rmtree(tmp, ignore_errors=True)
        if args.redis_url:
            await _drop_redis_keys(args.redis_url)
    backend = "PostgreSQL" if args.url.startswith("postgresql") else "SQLite"
    print()
    print(render(results, floor, gen, backend, "Redis" if args.redis_url else "memory", args.repeat, args.export_repeat))
    print(f"\nmachine: {platform.machine()}, {_cores()} cores, Python {platform.python_version()}; "
          f"finished in {time.monotonic() - began:.0f} s")
    for _label, t in results:
        bot, raw = _ms(t.bot), _ms(t.raw)
        if bot / raw > GOAL_RATIO:
            worst = 1
        if not t.agree():
            worst = 2
    return worst


def _cores() -> int:
    import os

    return os.cpu_count() or 0


async def _drop_redis_keys(url: str) -> None:
    """Delete the bot's keys (prefix ``dj:``) from our Redis database; never FLUSHDB a shared server."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match="dj:*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats_20k", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"database URL (default {DEFAULT_URL}; SQLite works too)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="KV; '' for the in-process one")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of /stats and /missing (median)")
    parser.add_argument("--export-repeat", type=int, default=3, help="timed runs of /export (median)")
    parser.add_argument("--profile", type=Path, default=None, help="write a pyinstrument profile per operation here")
    parser.add_argument("--only", default="", help="comma-separated operations to time, e.g. export,stats")
    parser.add_argument("--keep", action="store_true", help="keep the database and the export files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.disable(logging.WARNING)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
