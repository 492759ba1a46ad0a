"""A dues reminder to 20,000 members in 800 branches, on DingTalk and on WeCom, against the fake servers.

Data: ``bench.orggen`` (800 branches x 25 members, 12 months of dues) with December's collection still
unanswered, in PostgreSQL ``bench9`` (or ``--url``); KV in Redis db 7 (or ``--redis-url ''``).

The reminder is the scheduler's own: the default ``dues`` schedule's first December reminder, run by
``ScheduleRunner.run_due`` at its due time (one claimed transaction per branch: who is missing, nudge
caps, batched nudges into the outbox), then delivered by the outbox dispatcher (``BotApp.flush_outbox``)
through the real adapters to ``tests/fakes``' DingTalk and WeCom, which count every call. Four runs:

- DingTalk, no group bound: 1:1 nudges → ``oToMessages/batchSend``, at most 20 users per call;
- DingTalk, each branch's group bound with its custom robot: one @-message per branch;
- WeCom, no group bound: 1:1 nudges → ``message/send``, at most 1000 users per call;
- WeCom, each branch's group bound to a group-robot webhook: one message per branch.

Printed: platform calls beside the minimum possible for the messages the bot sent (goal: equal); the
time to plan the audience (who is missing in all 800 branches, the bot's ``missing_members`` beside one
hand-written SQL query); and the achieved DingTalk send rate against the token bucket (``qps``, default 18;
the fake answers DingTalk's QPS error beyond 20 calls in any second; goal ≥ 95 % of ``qps``, no rate-limit
error beyond the first backoff). WeCom has no per-app QPS setting: its limits are per member (30/min,
1000/h) and per webhook key (20/min); the run reports their deferrals (goal: none).

    python -m bench.broadcast [--url ...] [--redis-url ...] [--qps 18] [--branches 800] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import logging
import math
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import Date, bindparam, delete, func, select, text

from bench.orggen import DEFAULT_URL, Generated, OrgSpec, generate, reset_database
from bench.stats_20k import DEFAULT_REDIS, _drop_redis_keys
from bot.app import BotApp
from bot.clock import SHANGHAI, FakeClock
from bot.config import load_settings
from bot.db.tables import Campaign, NudgeLog, OccurrenceClaim, OutboxMessage
from schedules.audience import missing_members
from tests.fakes.dingtalk_server import FakeDingTalk
from tests.fakes.wecom_server import FakeUser, FakeWeCom

DT_BATCH, WECOM_BATCH = 20, 1000
DINGTALK_QPS_LIMIT = 20  # DingTalk's documented per-app, per-API limit; the fake enforces it
OTHER_SCHEDULES = ("theme_day", "branch_committee_meeting", "party_group_meeting", "general_meeting",
                   "party_lecture", "org_life_meeting", "democratic_appraisal", "work_log")
ROBOT_SECRET = "SECbench-broadcast"
RATE_GOAL = 0.95


# ---- fakes with a stopwatch ------------------------------------------------------------------------


class MeteredDingTalk(FakeDingTalk):
    """The fake DingTalk, plus a timestamp per call and DingTalk's QPS limit on the robot APIs."""

    LIMITED = ("groupMessages", "batchSend", "upload")

    def __init__(self, *args: Any, qps_limit: int = DINGTALK_QPS_LIMIT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.qps_limit = qps_limit
        self.stamps: dict[str, list[float]] = collections.defaultdict(list)
        self.rejected: collections.Counter[str] = collections.Counter()
        self._last_second: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)

    def _wrap(self, name: str, handler: Any) -> Any:
        inner = super()._wrap(name, handler)

        async def wrapped(request: web.Request) -> web.StreamResponse:
            now = time.monotonic()
            if name in self.LIMITED:
                window = self._last_second[name]
                while window and now - window[0] >= 1.0:
                    window.popleft()
                if len(window) >= self.qps_limit:
                    self.calls[name] += 1
                    self.rejected[name] += 1
                    return web.json_response({"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                                              "message": "qps limit"}, status=403)
                window.append(now)
            self.stamps[name].append(now)
            result: web.StreamResponse = await inner(request)
            return result

        return wrapped


class MeteredWeCom(FakeWeCom):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: dict[str, list[float]] = collections.defaultdict(list)

    def _wrap(self, name: str, handler: Any) -> Any:
        inner = super()._wrap(name, handler)

        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.stamps[name].append(time.monotonic())
            return await inner(request)

        return wrapped


# ---- one run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    endpoint: str  # the fake's endpoint that carries the nudges
    batch: int  # users per call (1 for group messages)
    messages: int = 0  # outbox rows sent to the platform
    calls: int = 0
    minimum: int = 0
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    retries: int = 0
    rejected: int = 0  # rate-limit answers from the fake
    deferred: int = 0  # our own pacing (WeCom per-member / per-webhook) turned into RETRY
    plan_s: float = 0.0  # run_due: 800 branch transactions
    send_s: float = 0.0  # flush_outbox until nothing is due
    rate: float = 0.0  # calls per second, first to last call
    detail: dict[str, Any] = field(default_factory=dict)


def minimum_calls(rows: list[OutboxMessage], batch: int) -> int:
    """Fewest calls for these messages: group messages one each, identical 1:1 texts ``batch`` users a call."""
    direct: collections.Counter[tuple[str, str]] = collections.Counter()
    groups = 0
    for row in rows:
        if row.payload.get("user_id"):
            direct[(str(row.payload.get("format")), str(row.payload.get("text")))] += 1
        else:
            groups += 1
    return groups + sum(math.ceil(n / batch) for n in direct.values())


async def remind_event(app: BotApp, year: int, month: int) -> tuple[dt.datetime, str]:
    """The first reminder of the month's dues collection in the plan (due time, offset)."""
    start = dt.datetime(year, month, 1, tzinfo=SHANGHAI)
    pairs = app.runner.plan_window(start, start + dt.timedelta(days=31))
    for occ, event in pairs:
        if occ.schedule_key == "dues" and event.kind == "remind" and occ.period_label == f"{year}-{month:02d}":
            return event.due_at, event.offset
    raise RuntimeError("no dues reminder planned")


async def reset_run_state(app: BotApp, since: dt.datetime) -> None:
    """Forget a former run: its outbox rows, claims and nudges (the generated nudge history stays)."""
    async with app.sessions() as session, session.begin():
        await session.execute(delete(OutboxMessage))
        await session.execute(delete(OccurrenceClaim))
        await session.execute(delete(NudgeLog).where(NudgeLog.at >= since))


async def deliver_all(app: BotApp, clock: FakeClock, rounds: int = 200) -> float:
    """Flush until nothing is pending; after a RETRY, jump the fake clock to the next attempt."""
    began = time.perf_counter()
    for _ in range(rounds):
        await app.flush_outbox()
        async with app.sessions() as session:
            nxt = (await session.execute(select(func.min(OutboxMessage.next_attempt_at))
                                         .where(OutboxMessage.status == "pending"))).scalar_one_or_none()
        if nxt is None:
            break
        clock.set(max(clock.now(), nxt))
    return time.perf_counter() - began


def _settings(tmp: Path, args: argparse.Namespace, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "data_dir": str(tmp / "data"), "database.url": args.url, "redis.url": args.redis_url or None,
        "demo.seed": False, "demo.announce_current": False, "scheduler.enabled": False, "local.enabled": False,
        "log_level": "WARNING", "schedules": [{"key": k, "enabled": False} for k in OTHER_SCHEDULES],
        "outbox.batch_size": args.batch_size,
    }  # fmt: skip
    values.update(overrides)
    return load_settings(None, env={}, overrides=values)


async def one_run(
    run: Run, settings: Any, clock: FakeClock, due: dt.datetime, fake: Any, args: argparse.Namespace,
    after: Callable[[Run], Awaitable[None]] | None = None,
) -> Run:
    if args.redis_url:
        await _drop_redis_keys(args.redis_url)  # token cache, quota counters, pacing windows of a former run
    clock.set(due)
    app = BotApp(settings, clock, scheduler=False, background_dispatch=False)
    await app.start()
    try:
        await reset_run_state(app, due - dt.timedelta(days=1))
        profiler = _profiler(args)
        began = time.perf_counter()
        report = await app.runner.run_due(due)
        run.plan_s = time.perf_counter() - began
        if profiler is not None:
            profiler.stop()
            args.profile.mkdir(parents=True, exist_ok=True)
            name = "run_due_" + "".join(ch if ch.isalnum() else "_" for ch in run.label.split("→")[0].strip())
            (args.profile / f"{name}.txt").write_text(profiler.output_text(unicode=True), encoding="utf-8")
        kinds = collections.Counter(key.split("|")[2] for key in report.executed)
        run.detail["events"] = dict(kinds)
        run.send_s = await deliver_all(app, clock)
        async with app.sessions() as session:
            rows = list((await session.execute(select(OutboxMessage))).scalars())
        run.statuses = collections.Counter(r.status for r in rows)
        run.retries = sum(max(0, r.attempts - 1) for r in rows)
        sent = [r for r in rows if r.status == "sent"]
        run.messages = len(rows)
        run.minimum = minimum_calls(sent, run.batch)
        run.calls = int(fake.calls[run.endpoint])
        stamps = fake.stamps.get(run.endpoint, [])
        if len(stamps) > 1:
            run.rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        run.detail["errors"] = collections.Counter(r.last_error[:60] for r in rows if r.last_error)
        if after is not None:
            await after(run)
    finally:
        await app.stop()
    return run


def _profiler(args: argparse.Namespace) -> Any:
    if args.profile is None:
        return None
    from pyinstrument import Profiler  # pip install pyinstrument

    profiler = Profiler(async_mode="enabled")
    profiler.start()
    return profiler


# ---- the audience ----------------------------------------------------------------------------------


MISSING_SQL = """
SELECT c.org_id, m.id, m.dingtalk_userid, m.wecom_userid
FROM campaigns c
JOIN members m ON m.org_id = c.org_id AND m.active AND (m.leave_until IS NULL OR m.leave_until < :day)
WHERE c.form_key = 'dues' AND c.schedule_key = 'dues' AND c.period = :period
  AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.campaign_id = c.id AND r.member_id = m.id)
ORDER BY c.org_id, m.id
"""


async def plan_audience(app: BotApp, period: str, day: dt.date, repeat: int) -> dict[str, Any]:
    """The bot's ``missing_members`` for every branch's campaign vs one GROUP-free anti-join in SQL."""
    bot_s: list[float] = []
    raw_s: list[float] = []
    bot_n = raw_n = 0
    stmt = text(MISSING_SQL).bindparams(bindparam("day", type_=Date()))
    for _ in range(repeat):
        async with app.sessions() as session:
            campaigns = list((await session.execute(
                select(Campaign).where(Campaign.form_key == "dues", Campaign.period == period)
                .order_by(Campaign.org_id))).scalars())  # fmt: skip
            began = time.perf_counter()
            bot_n = sum([len(await missing_members(session, c, day)) for c in campaigns])
            bot_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        async with app.engine.connect() as conn:
            raw_n = len((await conn.execute(stmt, {"day": day, "period": period})).all())
        raw_s.append(time.perf_counter() - began)
    return {"branches": len(campaigns), "bot_n": bot_n, "raw_n": raw_n, "bot_s": sorted(bot_s)[len(bot_s) // 2],
            "raw_s": sorted(raw_s)[len(raw_s) // 2]}


# ---- the four runs ---------------------------------------------------------------------------------

RUNS = ("dingtalk-dm", "dingtalk-groups", "wecom-dm", "wecom-groups")


def wanted(args: argparse.Namespace, name: str) -> bool:
    return not args.only or name in args.only.split(",")



async def run_all(args: argparse.Namespace) -> tuple[Generated, dict[str, Any], list[Run], float, str]:
    spec = OrgSpec(branches=args.branches, last_month_rate=0.0)
    print(f"generating the organisation in {args.url} ...", flush=True)
    gen = await generate(args.url, spec)
    print(f"  {gen.summary()}; December's dues not answered yet", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-broadcast-"))
    clock = FakeClock(dt.datetime(spec.year, spec.months, 1, 8, tzinfo=SHANGHAI))
    runs: list[Run] = []
    try:
        probe = BotApp(_settings(tmp, args), clock, scheduler=False, background_dispatch=False)
        await probe.start()
        try:
            due, offset = await remind_event(probe, spec.year, spec.months)
            print(f"reminder: dues {spec.year}-{spec.months:02d} {offset} at {due.isoformat()}", flush=True)
            audience = await plan_audience(probe, f"{spec.year}-{spec.months:02d}",
                                           due.astimezone(SHANGHAI).date(), args.repeat)
        finally:
            await probe.stop()
        names = {b: gen.branch_names[b] for b in gen.branch_ids}

        async with MeteredDingTalk(clock=clock) as ding:
            base = {"enabled": True, "mode": "http", "public_url": "http://127.0.0.1:9", "app_key": ding.app_key,
                    "app_secret": ding.app_secret, "api_base": ding.base_url, "oapi_base": ding.base_url,
                    "qps": args.qps, "monthly_api_quota": 0, "monthly_push_quota": 0}
            async def dt_after(run: Run) -> None:
                run.rejected = sum(ding.rejected.values())

            if wanted(args, "dingtalk-dm"):
                print(f"DingTalk 1:1 nudges (qps {args.qps:g}) ...", flush=True)
                runs.append(await one_run(Run("DingTalk 1:1 → oToMessages/batchSend", "batchSend", DT_BATCH),
                                          _settings(tmp, args, dingtalk=base), clock, due, ding, args, dt_after))
            groups = [{"platform": "dingtalk", "conversation_id": f"cidBench{b}==", "org": names[b],
                       "webhook_url": ding.add_robot(secret=ROBOT_SECRET), "webhook_secret": ROBOT_SECRET}
                      for b in gen.branch_ids]
            ding.calls.clear()
            ding.stamps.clear()
            ding.rejected.clear()
            if wanted(args, "dingtalk-groups"):
                print("DingTalk group nudges (custom robots) ...", flush=True)
                runs.append(await one_run(Run("DingTalk groups → custom robot (@)", "robot", 1),
                                          _settings(tmp, args, dingtalk=base, groups=groups), clock, due, ding,
                                          args, dt_after))
        users = [FakeUser(f"wc{i:06d}", f"党员{i}") for i in range(spec.branches * spec.per_branch)]
        keys = tuple(f"benchhook{b}" for b in gen.branch_ids)
        async with MeteredWeCom(users=users, webhook_keys=keys, clock=clock) as wecom:
            base = {"enabled": True, "corp_id": wecom.corp_id, "agent_id": str(wecom.agent_id),
                    "secret": wecom.secret, "api_base": wecom.base_url}

            async def wc_after(run: Run) -> None:
                errors = run.detail["errors"]
                run.deferred = sum(n for err, n in errors.items() if "超过" in err or "排队" in err)
                run.rejected = sum(n for err, n in errors.items() if "45009" in err)

            if wanted(args, "wecom-dm"):
                print("WeCom 1:1 nudges ...", flush=True)
                runs.append(await one_run(Run("WeCom 1:1 → message/send", "message/send", WECOM_BATCH),
                                          _settings(tmp, args, wecom=base), clock, due, wecom, args, wc_after))
            if args.batch_size < WECOM_BATCH and wanted(args, "wecom-dm"):
                wecom.calls.clear()
                wecom.stamps.clear()
                print(f"WeCom 1:1 nudges with [outbox] batch_size = {WECOM_BATCH} ...", flush=True)
                tuned = Run(f"  same, [outbox] batch_size={WECOM_BATCH}", "message/send", WECOM_BATCH)
                runs.append(await one_run(tuned, _settings(tmp, args, wecom=base, **{"outbox.batch_size": WECOM_BATCH}),
                                          clock, due, wecom, args, wc_after))
            groups = [{"platform": "wecom", "conversation_id": f"wrBench{b}", "org": names[b], "webhook_url": key}
                      for b, key in zip(gen.branch_ids, keys, strict=True)]
            wecom.calls.clear()
            wecom.stamps.clear()
            if wanted(args, "wecom-groups"):
                print("WeCom group nudges (group-robot webhooks) ...", flush=True)
                runs.append(await one_run(Run("WeCom groups → webhook/send", "webhook/send", 1),
                                          _settings(tmp, args, wecom=base, groups=groups), clock, due, wecom,
                                          args, wc_after))
    finally:
        if not args.keep:
            await reset_database(args.url)
        shutil.rmtree(tmp, ignore_errors=True)
        if args.redis_url:
            await _drop_redis_keys(args.redis_url)
    return gen, audience, runs, 0.0, offset


def render(gen: Generated, audience: dict[str, Any], runs: list[Run], args: argparse.Namespace,
           seconds: float) -> str:
    out = [
        f"Dues reminder to {gen.counts['members']:,} members in {gen.counts['branches']} branches "
        f"({'PostgreSQL' if args.url.startswith('postgresql') else 'SQLite'}, KV "
        f"{'Redis' if args.redis_url else 'memory'}, [outbox] batch_size={args.batch_size})",
        "",
        f"{'platform calls':<42}{'messages':>9}{'calls':>8}{'minimum':>9}{'ratio':>7}  goal = minimum",
        "-" * 86,
    ]
    for r in runs:
        ratio = r.calls / r.minimum if r.minimum else float("nan")
        ok = "ok" if r.calls == r.minimum else "MISSED"
        out.append(f"{r.label:<42}{r.messages:>9,}{r.calls:>8,}{r.minimum:>9,}{ratio:>7.2f}  {ok}")
    out += [
        "",
        f"{'audience (who is missing, all branches)':<42}{'bot ms':>9}{'raw SQL ms':>12}{'ratio':>7}  members",
        "-" * 86,
        f"{'schedules.audience.missing_members x' + str(audience['branches']):<42}{audience['bot_s'] * 1000:>9.0f}"
        f"{audience['raw_s'] * 1000:>12.1f}{audience['bot_s'] / audience['raw_s']:>7.1f}  "
        f"{audience['bot_n']:,} (SQL {audience['raw_n']:,})",
    ]
    for r in runs:
        out.append(f"{'  whole reminder event, ' + r.label.split(' →')[0].strip():<42}{r.plan_s * 1000:>9.0f}"
                   f"{'':>12}{'':>7}  (ScheduleRunner.run_due: 800 claimed transactions)")
    out += [
        "",
        f"{'send rate':<42}{'calls/s':>9}{'allowed':>9}{'share':>8}{'send s':>8}{'msgs/s':>8}  retries, rate-limit answers",
        "-" * 86,
    ]
    for r in runs:
        if r.endpoint == "batchSend":
            share = r.rate / args.qps
            ok = "ok" if share >= RATE_GOAL and r.rejected <= 1 else "MISSED"
            out.append(f"{r.label:<42}{r.rate:>9.1f}{args.qps:>9.1f}{share:>8.0%}{r.send_s:>8.1f}"
                       f"{r.messages / r.send_s:>8.0f}  {r.retries}, {r.rejected}  goal ≥{RATE_GOAL:.0%}: {ok}")
        else:
            limit = "—"
            extra = f", paced {r.deferred}" if r.endpoint.startswith(("message", "webhook")) else ""
            out.append(f"{r.label:<42}{r.rate:>9.1f}{limit:>9}{'':>8}{r.send_s:>8.1f}{r.messages / r.send_s:>8.0f}"
                       f"  {r.retries}, {r.rejected}{extra}")
    bad = {k: v for r in runs for k, v in r.statuses.items() if k != "sent"}
    out += [
        "",
        "outbox after each run: " + "; ".join(f"{r.label.split(' →')[0].strip()}: {dict(r.statuses)}" for r in runs),
        f"scheduler events run per platform run: {runs[0].detail.get('events') if runs else {}}",
        "not sent: " + (str(bad) if bad else "none"),
        "",
        f"machine: {platform.machine()}, {_cores()} cores (shared), Python {platform.python_version()}; "
        f"finished in {seconds:.0f} s",
    ]
    return "\n".join(out)


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"database URL (default {DEFAULT_URL})")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="KV; '' for the in-process one")
    parser.add_argument("--branches", type=int, default=800, help="branches of 25 members (default 800)")
    parser.add_argument("--qps", type=float, default=18.0, help="[dingtalk] qps, the token bucket (default 18)")
    parser.add_argument("--batch-size", type=int, default=200, help="[outbox] batch_size (default: the bot's, 200)")
    parser.add_argument("--repeat", type=int, default=3, help="audience planning runs (median)")
    parser.add_argument("--only", default="", help=f"comma-separated runs of {', '.join(RUNS)}")
    parser.add_argument("--profile", type=Path, default=None, help="write a pyinstrument profile of each run_due here")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.disable(logging.WARNING)
    began = time.monotonic()
    gen, audience, runs, _, _ = asyncio.run(run_all(args))
    print()
    print(render(gen, audience, runs, args, time.monotonic() - began))
    missed = any(r.calls != r.minimum for r in runs if not r.label.startswith("  "))
    slow = any(r.rate / args.qps < RATE_GOAL or r.rejected > 1 for r in runs if r.endpoint == "batchSend")
    unsent = any(k != "sent" for r in runs for k in r.statuses)
    return 2 if unsent else (1 if missed or slow else 0)


if __name__ == "__main__":
    sys.exit(main())
