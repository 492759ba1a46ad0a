"""A large synthetic organisation for the benchmarks: bulk-loaded, reproducible, on PostgreSQL or SQLite.

One committee, ``branches`` branches of ``per_branch`` members each (default 800 x 25 = 20,000), every
member with a mobile, a DingTalk and a WeCom user id, a dues category and (when salaried) a dues base.
Each branch has a secretary (书记); one member of the first branch is the admin (管理员). A few members
are on leave, a few joined during the year, some are inactive.

Campaigns: a dues collection per branch and month (``dues``, ``2026-01`` ... ``2026-12``, as the default
schedule names them) with ~85-95 % answers (``amount_fen`` set to the member's standard; a few late,
flagged or entered by the secretary), and theme-day sign-ins (``theme_day``) in some months. The past
months' reminders are in ``nudge_log`` (two per member who had not answered in time).

Rows go in with SQLAlchemy core ``insert(table)`` + a list of dicts (executemany / insertmanyvalues),
never the ORM row by row, after the bot's own migrations (``bot.migrations.upgrade``). PostgreSQL gets
an ``ANALYZE`` at the end, as autovacuum would give a live database.

    python -m bench.orggen [--url postgresql+asyncpg://postgres@127.0.0.1:5432/bench9] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.clock import SHANGHAI
from bot.db.engine import create_engine
from bot.db.tables import Campaign, Member, NudgeLog, Org, Response
from bot.domain.dues import DuesCategory, compute_dues
from bot.migrations import upgrade

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench9"
COMMITTEE = "基准机关党委"
CHUNK = 20_000  # rows per executemany call

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国红梅志海波斌宇浩凯鹏飞文玲晨雪琳欣怡子轩"
_CATEGORIES: list[tuple[str, float]] = [
    (DuesCategory.IN_SERVICE.value, 0.70),
    (DuesCategory.RETIRED.value, 0.20),
    (DuesCategory.STUDENT.value, 0.05),
    (DuesCategory.FARMER.value, 0.03),
    (DuesCategory.OTHER.value, 0.02),
]


@dataclass(frozen=True)
class OrgSpec:
    branches: int = 800
    per_branch: int = 25
    year: int = 2026
    months: int = 12  # dues campaigns for months 1..months
    answer_rate: tuple[float, float] = (0.85, 0.95)  # per branch and month, drawn uniformly
    last_month_rate: float | None = None  # e.g. 0.0: the newest dues campaign has no answers yet
    theme_day_months: tuple[int, ...] = (3, 6, 9)
    seed: int = 20261210


@dataclass
class Person:
    id: int
    name: str
    mobile: str
    org_id: int
    dingtalk_userid: str
    wecom_userid: str


@dataclass
class Generated:
    url: str
    spec: OrgSpec
    committee_id: int
    branch_ids: list[int]  # in path order
    branch_names: dict[int, str]
    admin: Person
    secretaries: dict[int, Person]  # branch id -> its secretary
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['branches']} branches, {c['members']:,} members ({c['active']:,} active), "
            f"{c['campaigns']:,} campaigns ({c['dues_campaigns']:,} dues), {c['responses']:,} responses, "
            f"{c['nudges']:,} past nudges, "
            f"generated in {self.seconds:.1f} s"
        )


# ---- database lifecycle -----------------------------------------------------------------------------


async def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist (no-op for SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database})
            if not found:
                await conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        await admin.dispose()


async def reset_database(url: str) -> None:
    """Empty the benchmark database: drop every table (PostgreSQL schema ``public``; SQLite tables)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            else:
                names = (await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))).scalars()
                for name in list(names):
                    if not name.startswith("sqlite_"):
                        await conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
    finally:
        await engine.dispose()


# ---- the organisation ------------------------------------------------------------------------------


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _category(rng: random.Random) -> str:
    x = rng.random()
    for category, share in _CATEGORIES:
        if x < share:
            return category
        x -= share
    return DuesCategory.IN_SERVICE.value


def _base(rng: random.Random, category: str) -> int | None:
    if category == DuesCategory.IN_SERVICE.value:
        return rng.randrange(250_000, 2_500_000, 100)
    if category == DuesCategory.RETIRED.value:
        return rng.randrange(200_000, 900_000, 100)
    return None


def _first_workday(year: int, month: int) -> dt.date:
    day = dt.date(year, month, 1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def _chunks(rows: Sequence[dict[str, Any]], size: int = CHUNK) -> list[Sequence[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


async def _bulk(engine: AsyncEngine, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    for part in _chunks(rows):
        async with engine.begin() as conn:
            await conn.execute(insert(table), list(part))


async def generate(url: str = DEFAULT_URL, spec: OrgSpec | None = None, *, reset: bool = True) -> Generated:
    """Migrate ``url`` (after emptying it when ``reset``) and load the organisation; returns handles."""
    spec = spec or OrgSpec()
    began = time.monotonic()
    await ensure_database(url)
    if reset:
        await reset_database(url)
    rng = random.Random(spec.seed)
    engine = create_engine(url)
    try:
        await upgrade(engine)
        created = dt.datetime(spec.year - 1, 6, 1, 9, 0, tzinfo=SHANGHAI)
        async with engine.begin() as conn:
            await conn.execute(insert(Org.__table__), [{
                "name": COMMITTEE, "path": COMMITTEE, "kind": "committee", "parent_id": None, "unit_type": "机关",
                "created_at": created}])  # fmt: skip
            committee_id = int((await conn.execute(select(Org.id).where(Org.path == COMMITTEE))).scalar_one())
        names = [f"基准第{b + 1:03d}党支部" for b in range(spec.branches)]
        await _bulk(engine, Org.__table__, [
            {"name": n, "path": f"{COMMITTEE}/{n}", "kind": "branch", "parent_id": committee_id, "unit_type": "机关",
             "created_at": created} for n in names])  # fmt: skip
        async with engine.connect() as conn:
            by_name = dict((await conn.execute(select(Org.name, Org.id).where(Org.parent_id == committee_id))).tuples().all())
        branch_ids = [int(by_name[n]) for n in names]

        # Members: 书记 first in each branch, the admin in the first branch.
        member_rows: list[dict[str, Any]] = []
        for b, org_id in enumerate(branch_ids):
            for k in range(spec.per_branch):
                i = b * spec.per_branch + k
                roles = ",党员,"
                if k == 0:
                    roles = ",党员,书记,"
                elif k == 1:
                    roles = ",党员,组织委员,"
                if b == 0 and k == 2:
                    roles = ",党员,管理员,"
                category = _category(rng)
                joined = created
                if rng.random() < 0.02:  # joined during the year: owes dues only from then on
                    joined = _at(dt.date(spec.year, rng.randint(2, 11), rng.randint(1, 28)), 10)
                leave = dt.date(spec.year + 1, 1, 31) if rng.random() < 0.01 and k > 2 else None
                member_rows.append({
                    "name": _name(rng), "mobile": f"139{i:08d}", "org_id": org_id, "group_id": None, "roles": roles,
                    "category": category, "dues_base_fen": _base(rng, category), "dingtalk_userid": f"dt{i:06d}",
                    "wecom_userid": f"wc{i:06d}", "active": not (k > 2 and rng.random() < 0.005),
                    "leave_until": leave, "leave_reason": "病假" if leave else "", "created_at": joined,
                })  # fmt: skip
        await _bulk(engine, Member.__table__, member_rows)
        async with engine.connect() as conn:
            ids = dict((await conn.execute(select(Member.mobile, Member.id))).tuples().all())
        for row in member_rows:
            row["id"] = int(ids[row["mobile"]])
        by_branch: dict[int, list[dict[str, Any]]] = {}
        for row in member_rows:
            by_branch.setdefault(row["org_id"], []).append(row)

        # Campaigns.
        campaign_rows: list[dict[str, Any]] = []
        for m in range(1, spec.months + 1):
            opened = _at(_first_workday(spec.year, m), 9)
            deadline = _at(dt.date(spec.year, m, 15), 18)
            for org_id in branch_ids:
                campaign_rows.append({
                    "form_key": "dues", "period": f"{spec.year}-{m:02d}", "org_id": org_id, "schedule_key": "dues",
                    "title": f"{m}月党费收缴", "audience": {"roles": [], "categories": []}, "opened_at": opened,
                    "deadline_at": deadline, "created_by": None,
                })  # fmt: skip
        for m in spec.theme_day_months:
            day = _first_workday(spec.year, m) + dt.timedelta(days=3)
            for org_id in branch_ids:
                campaign_rows.append({
                    "form_key": "theme_day", "period": f"{spec.year}-{m:02d}", "org_id": org_id,
                    "schedule_key": "theme_day", "title": f"{m}月主题党日", "audience": {"roles": [], "categories": []},
                    "opened_at": _at(day, 9), "deadline_at": _at(day, 18), "created_by": None,
                })  # fmt: skip
        await _bulk(engine, Campaign.__table__, campaign_rows)
        async with engine.connect() as conn:
            campaigns = (await conn.execute(
                select(Campaign.id, Campaign.org_id, Campaign.form_key, Campaign.period, Campaign.opened_at,
                       Campaign.deadline_at))).tuples().all()  # fmt: skip

        # Responses.
        standards: dict[int, int] = {}
        for row in member_rows:
            try:
                standards[row["id"]] = compute_dues(row["dues_base_fen"], DuesCategory(row["category"])).amount_fen
            except Exception:  # noqa: BLE001 - no base on file: pays a round sum
                standards[row["id"]] = 2000
        responses: list[dict[str, Any]] = []
        for cid, org_id, form_key, period, opened_at, deadline_at in campaigns:
            month = int(period[5:7])
            rate = rng.uniform(*spec.answer_rate)
            if form_key == "dues" and month == spec.months and spec.last_month_rate is not None:
                rate = spec.last_month_rate
            members = by_branch[org_id]
            secretary = members[0]
            for row in members:
                if row["created_at"] > deadline_at or rng.random() >= rate:
                    continue
                late = rng.random() < 0.05
                at = deadline_at + dt.timedelta(days=rng.randint(1, 10)) if late else (
                    opened_at + dt.timedelta(minutes=rng.randint(5, 60 * 24 * 10)))  # fmt: skip
                proxy = rng.random() < 0.03
                if form_key == "dues":
                    amount = standards[row["id"]]
                    flagged = rng.random() < 0.01
                    if flagged:
                        amount += 1000
                    values: dict[str, Any] = {"amount": amount}
                else:
                    amount, flagged = None, False
                    status = rng.choices(["present", "online", "leave"], (0.8, 0.12, 0.08))[0]
                    values = {"attendance": {"status": status, "reason": "出差" if status == "leave" else ""}}
                responses.append({
                    "campaign_id": cid, "member_id": row["id"], "values": values, "amount_fen": amount, "revision": 1,
                    "late": late, "flagged": flagged, "flag_note": "金额与标准不符" if flagged else "",
                    "entered_by": secretary["id"] if proxy else row["id"], "platform": rng.choice(("dingtalk", "wecom")),
                    "created_at": at, "updated_at": at,
                })  # fmt: skip
        await _bulk(engine, Response.__table__, responses)

        # Nudge history: the two reminders of every past dues collection went to whoever had not answered
        # (or answered late) by then. The per-day / per-week caps read this table on every reminder.
        answered_on_time = {(r["campaign_id"], r["member_id"]) for r in responses if not r["late"]}
        nudges: list[dict[str, Any]] = []
        for cid, org_id, form_key, _period, _opened_at, deadline_at in campaigns:
            if form_key != "dues" or deadline_at >= _at(dt.date(spec.year, spec.months, 1), 0):
                continue
            for row in by_branch[org_id]:
                if row["active"] and row["created_at"] <= deadline_at and (cid, row["id"]) not in answered_on_time:
                    for days in (3, 1):
                        nudges.append({"member_id": row["id"], "campaign_id": cid,
                                       "at": deadline_at - dt.timedelta(days=days)})
        await _bulk(engine, NudgeLog.__table__, nudges)
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
        else:
            async with engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()

    def person(row: dict[str, Any]) -> Person:
        return Person(row["id"], row["name"], row["mobile"], row["org_id"], row["dingtalk_userid"], row["wecom_userid"])

    admin = next(person(r) for r in member_rows if "管理员" in r["roles"])
    secretaries = {org_id: person(rows[0]) for org_id, rows in by_branch.items()}
    counts = {
        "branches": len(branch_ids),
        "members": len(member_rows),
        "active": sum(1 for r in member_rows if r["active"]),
        "campaigns": len(campaign_rows),
        "dues_campaigns": sum(1 for r in campaign_rows if r["form_key"] == "dues"),
        "responses": len(responses),
        "dues_responses": sum(1 for r in responses if r["amount_fen"] is not None),
        "nudges": len(nudges),
    }
    return Generated(url, spec, committee_id, branch_ids, dict(zip(branch_ids, names, strict=True)), admin,
                     secretaries, counts, time.monotonic() - began)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orggen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"database URL (default {DEFAULT_URL})")
    parser.add_argument("--branches", type=int, default=800)
    parser.add_argument("--per-branch", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="leave the data in place (default: drop it again)")
    args = parser.parse_args(argv)
    spec = OrgSpec(branches=args.branches, per_branch=args.per_branch)

    async def run() -> None:
        generated = await generate(args.url, spec)
        print(generated.summary())
        if not args.keep:
            await reset_database(args.url)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
