"""党费收缴登记表 (domain §6): member × month paid amounts, the standard (``compute_dues``, via
``bot.reports.standards``), due, paid, arrears, remarks (late / proxy / to check) and a totals row per
branch; a summary sheet first when there are several branches. ``dues_data`` also feeds /compliance.

Figures come from SQL: one ``GROUP BY`` (branch, member) with a conditional ``SUM`` per month, so a
committee's year (20,000 members, 200,000+ answers) is 20,000 rows from the database; the member, month and
branch totals are sums over those rows rather than more scans of the answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Integer, case, cast, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.db.tables import Campaign, Org, Response
from bot.domain.dues import DEFAULT_POLICY, DuesPolicy, DuesStandard
from bot.reports.ledger_model import (
    Column,
    LedgerMember,
    Sheet,
    campaigns_of,
    core_rows,
    gc_paused,
    in_month,
    member_rows,
    members_by_org,
    month_end,
    month_expr,
    month_of,
    months_held,
    org_names,
    side_connection,
)
from bot.reports.periods import ReportPeriod
from bot.reports.standards import RosterStandards

ARREARS_STREAK_WARN = 3  # consecutive unpaid months that deserve a remark (domain §1.7: remind at 3, alert at 5)


class DuesMark(NamedTuple):
    """What the remarks say about one (member, month) answer; only the few marked ones get one."""

    late: bool
    flagged: bool
    proxy_by: int | None  # member id of who entered it for them


NO_MARKS: Mapping[int, DuesMark] = MappingProxyType({})


@dataclass(slots=True)
class DuesRow:
    member: LedgerMember
    standard: DuesStandard | None
    rate_text: str  # 1.5% / 定额 / "" (no standard)
    amounts: tuple[int | None, ...]  # per month of the period: the SQL sum of that month (None: no answer)
    marks: Mapping[int, DuesMark]  # month → late / flagged / proxy
    paid_fen: int  # SQL SUM over the period (all the member's answers in these branches)
    due_fen: int | None
    arrears_fen: int | None
    unpaid_months: list[int]
    streak: int  # consecutive unpaid months up to the latest collected month
    owed: int  # collected months since the member joined


@dataclass
class DuesBranch:
    org: Org
    months_collected: list[int]
    rows: list[DuesRow]
    month_totals: dict[int, int]  # month → fen (sum of the SQL month cells)
    paid_total: int  # fen (sum of the SQL member sums)
    payments: int  # answered (member, month) pairs
    expected_payments: int = 0  # collected months owed, over the rows
    standard_total: int = 0  # fen: the rows' monthly standards, dues, arrears and unpaid months added up
    due_total: int = 0
    arrears_total: int = 0
    unpaid_total: int = 0

    @property
    def rate(self) -> float:
        return min(1.0, self.payments / self.expected_payments) if self.expected_payments else 1.0


async def _dues_grid(conn: AsyncConnection, scope: ColumnElement[bool], period: ReportPeriod) -> Sequence[Any]:
    """Rows of (branch, member, paid in the period, the month sums…): one ``GROUP BY`` with a conditional
    ``SUM`` per month (NULL: no answer that month).

    Each campaign's month number is worked out once, in a subquery that ``OFFSET 0`` keeps PostgreSQL from
    merging into the outer query (which would re-evaluate it per answer and per month column: 2.5 million
    ``LIKE``s for a committee's year, a quarter of the query's time). Sums are over ``int4`` amounts:
    PostgreSQL adds ``bigint`` into ``numeric``, twice as slow (a month's dues never approach 2^31 fen)."""
    months = period.months
    held = (
        select(Campaign.id, Campaign.org_id,
               case(*[(in_month(f"{period.year}-{m:02d}"), m) for m in months], else_=None).label("month"))
        .where(scope)
        .offset(0)
        .subquery()
    )  # fmt: skip
    fen = cast(func.coalesce(Response.amount_fen, 0), Integer)
    stmt = (
        select(held.c.org_id, Response.member_id, func.sum(fen),
               *[func.sum(case((held.c.month == m, fen), else_=None)) for m in months])
        .select_from(Response)
        .join(held, held.c.id == Response.campaign_id)
        .group_by(held.c.org_id, Response.member_id)
    )  # fmt: skip
    return await core_rows(conn, stmt)


async def _other_answers(conn: AsyncConnection, scope: ColumnElement[bool], period: ReportPeriod) -> dict[int, int]:
    """Per branch, answered (member, label) pairs of campaigns that are not a month's (``2026-Q4``):
    they count as payments like a month's. Only asked when there are such campaigns."""
    months = [in_month(f"{period.year}-{m:02d}") for m in period.months]
    pairs = (
        select(Campaign.org_id, Response.member_id, month_expr().label("label"))
        .select_from(Response)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .where(scope, not_(or_(*months)))
        .distinct()
        .subquery()
    )
    stmt = select(pairs.c.org_id, func.count()).group_by(pairs.c.org_id)
    return {oid: int(n) for oid, n in await core_rows(conn, stmt)}


async def _dues_marks(conn: AsyncConnection, scope: ColumnElement[bool]) -> Sequence[Any]:
    """Rows of (branch, member, month, late, flagged, proxy): a ``GROUP BY`` over only the late, flagged or
    proxy answers (~9 % of them)."""
    proxy = Response.entered_by != Response.member_id
    month = month_expr()  # one object: PostgreSQL matches GROUP BY to the select list by its parameters
    stmt = (
        select(
            Campaign.org_id,
            Response.member_id,
            month,
            func.sum(case((Response.late.is_(True), 1), else_=0)),
            func.sum(case((Response.flagged.is_(True), 1), else_=0)),
            func.max(case((proxy, Response.entered_by), else_=None)),
        )
        .select_from(Response)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .where(scope, or_(Response.late.is_(True), Response.flagged.is_(True), proxy))
        .group_by(Campaign.org_id, Response.member_id, month)
    )
    return await core_rows(conn, stmt)


async def _dues_small_queries(
    conn: AsyncConnection, scope: ColumnElement[bool], org_ids: Sequence[int], period: ReportPeriod
) -> tuple[dict[int, set[int]], bool, Sequence[Any], Sequence[Any]]:
    """The months held, the marked answers and the roster: everything but the grid."""
    months, other_labels = await months_held(conn, scope, org_ids, period)
    return months, other_labels, await _dues_marks(conn, scope), await member_rows(conn, org_ids)


async def dues_data(
    session: AsyncSession,
    branches: Sequence[Org],
    period: ReportPeriod,
    policy: DuesPolicy = DEFAULT_POLICY,
    form_key: str = "dues",
) -> list[DuesBranch]:
    """Per branch: the months collected, each member's payments by month and the totals.

    Four queries whatever the size (the months collected, the (branch, member) grid, the marked answers,
    the members' roster columns), a fifth only if some campaign is not a month's; the totals are sums
    over the grid's rows. On PostgreSQL the three small queries run on a second connection while the
    grid's (two thirds of the database time) runs on the session's.
    """
    ids = [b.id for b in branches]
    if not ids:
        return []
    scope = campaigns_of(ids, form_key, period)
    with gc_paused():
        conn = await session.connection()
        async with side_connection(session) as side:
            if side is None:
                grid_rows = await _dues_grid(conn, scope, period)
                months, other_labels, mark_rows, member_rows = await _dues_small_queries(conn, scope, ids, period)
            else:
                async with asyncio.TaskGroup() as group:
                    small = group.create_task(_dues_small_queries(side, scope, ids, period))
                    grid_rows = await _dues_grid(conn, scope, period)
                months, other_labels, mark_rows, member_rows = small.result()
        extra = await _other_answers(conn, scope, period) if other_labels else {}
        return _assemble_dues(branches, period, policy, months, grid_rows, mark_rows, extra, member_rows)


def _assemble_dues(
    branches: Sequence[Org],
    period: ReportPeriod,
    policy: DuesPolicy,
    months: Mapping[int, set[int]],
    grid_rows: Sequence[Any],
    mark_rows: Sequence[Any],
    extra: Mapping[int, int],
    member_rows: Sequence[Any],
) -> list[DuesBranch]:
    ids = [b.id for b in branches]
    order = period.months  # a property that builds a list: read it once
    in_period = set(order)
    grid = {(row[0], row[1]): (row[2], tuple(row[3:])) for row in grid_rows}
    marks: dict[tuple[int, int], dict[int, DuesMark]] = {}
    for oid, mid, label, late, flagged, by in mark_rows:
        m = month_of(label)
        if m is not None and m in in_period:
            marks.setdefault((oid, mid), {})[m] = DuesMark(bool(late), bool(flagged), by)
    members = members_by_org(member_rows, ids, {mid for _oid, mid in grid})
    index = {m: i for i, m in enumerate(order)}
    paid: dict[int, int] = {}
    month_sums: dict[int, list[int]] = {oid: [0] * len(order) for oid in ids}
    org_paid: dict[int, int] = dict.fromkeys(ids, 0)
    pairs: dict[int, int] = {oid: extra.get(oid, 0) for oid in ids}
    for (oid, mid), (total, amounts) in grid.items():
        paid[mid] = paid.get(mid, 0) + total
        org_paid[oid] = org_paid.get(oid, 0) + total
        sums = month_sums.setdefault(oid, [0] * len(order))
        answered = 0
        for i, amount in enumerate(amounts):
            if amount is not None:
                sums[i] += amount
                answered += 1
        pairs[oid] = pairs.get(oid, 0) + answered
    standards = RosterStandards(policy).of
    nothing: tuple[int, tuple[int | None, ...]] = (0, (None,) * len(order))
    out = []
    for branch in branches:
        bid = branch.id  # an ORM attribute: read once, not per member
        collected = sorted(months[bid])
        ends = [(index[m], m, month_end(period.year, m)) for m in collected]
        every = [(i, m) for i, m, _end in ends]  # owed by whoever joined before the first of them ended
        first_end = ends[0][2] if ends else dt.date.max
        rows = []
        std_total = due_total = arrears_total = unpaid_total = expected = 0
        for member in members.get(bid, ()):
            mid = member.id
            amounts = grid.get((bid, mid), nothing)[1]
            std, rate_text = standards(member.category, member.dues_base_fen)
            joined_on = member.joined_on
            owed = every if joined_on <= first_end else [(i, m) for i, m, end in ends if end >= joined_on]
            unpaid = [m for i, m in owed if amounts[i] is None]
            streak = 0
            if unpaid:
                for i, _m in reversed(owed):
                    if amounts[i] is not None:
                        break
                    streak += 1
            paid_fen = paid.get(mid, 0)
            due = arrears = None
            if std is not None:
                due = std.amount_fen * len(owed)
                arrears = max(0, due - paid_fen)
                std_total += std.amount_fen
                due_total += due
                arrears_total += arrears
            unpaid_total += len(unpaid)
            expected += len(owed)
            mine = marks.get((bid, mid), NO_MARKS)
            rows.append(DuesRow(member, std, rate_text, amounts, mine, paid_fen, due, arrears, unpaid, streak, len(owed)))
        sums = month_sums.get(bid, [0] * len(order))
        out.append(DuesBranch(
            branch, collected, rows, {m: sums[index[m]] for m in collected}, org_paid.get(bid, 0),
            pairs.get(bid, 0), expected, std_total, due_total, arrears_total, unpaid_total,
        ))  # fmt: skip
    return out


_MONTH_TEXT = {m: f"{m}月" for m in range(1, 13)}


def _dues_remarks(row: DuesRow, names: Mapping[int, str]) -> str:
    notes = []
    for m, mark in sorted(row.marks.items()):
        if mark.late:
            notes.append(f"{m}月逾期补交")
        if mark.proxy_by is not None:
            notes.append(f"{m}月由{names.get(mark.proxy_by, '他人')}代登记")
        if mark.flagged:
            notes.append(f"{m}月金额待核对")
    if row.standard is None:
        notes.append("未登记缴费基数，无法计算标准")
    elif row.standard.capped:
        notes.append("按每月1000元封顶")
    if row.unpaid_months:
        notes.append("未交：" + "、".join([_MONTH_TEXT[m] for m in row.unpaid_months]))
    if row.streak >= ARREARS_STREAK_WARN:
        notes.append(f"已连续{row.streak}个月未交")
    return "；".join(notes)


def _dues_sheet(data: DuesBranch, period: ReportPeriod, names: Mapping[int, str], now_text: str, private: bool) -> Sheet:
    months = period.months
    columns = [Column("序号", 6, "int"), Column("姓名", 10), Column("人员类别", 9)]
    if private:
        columns.append(Column("缴费基数（元/月）", 14, "money"))
    columns += [Column("交纳比例", 9), Column("月交纳标准（元）", 14, "money")]
    columns += [Column(f"{m}月", 9, "money") for m in months]
    columns += [
        Column("应交（元）", 11, "money"), Column("实交（元）", 11, "money"), Column("欠交（元）", 11, "money"),
        Column("未交月数", 9, "int"), Column("备注", 42),
    ]  # fmt: skip
    rows: list[list[Any]] = []
    append = rows.append
    for i, row in enumerate(data.rows, 1):
        member, std = row.member, row.standard
        head: list[Any] = (
            [i, member.name, member.category, member.dues_base_fen] if private else [i, member.name, member.category]
        )
        append([
            *head, row.rate_text, std.amount_fen if std is not None else None, *row.amounts,
            row.due_fen, row.paid_fen, row.arrears_fen, len(row.unpaid_months), _dues_remarks(row, names),
        ])  # fmt: skip
    totals: list[Any] = ["合计", f"{len(data.rows)}人", ""]
    if private:
        totals.append(None)
    totals += ["", data.standard_total]
    totals += [data.month_totals.get(m, 0) if m in data.months_collected else None for m in months]
    totals += [data.due_total, data.paid_total, data.arrears_total, data.unpaid_total, f"收缴率{data.rate:.0%}"]
    collected = "、".join(f"{m}月" for m in data.months_collected) or "无"
    notes = [
        f"单位：元。应交按本期已开展收缴的月份计算（{collected}）。",
        f"导出时间：{now_text}。" + ("缴费基数属个人信息，仅限支部书记、管理员查阅。" if private else ""),
    ]
    return Sheet(
        name=data.org.name, title=f"{data.org.name}党费收缴登记表（{period.title}）", columns=columns, rows=rows,
        totals=totals, notes=notes, branch=data.org.name,
    )  # fmt: skip


def _dues_summary(data: list[DuesBranch], period: ReportPeriod, now_text: str) -> Sheet:
    columns = [
        Column("序号", 6, "int"), Column("党支部", 18), Column("党员人数", 9, "int"),
        Column("月交纳标准合计（元）", 16, "money"), Column("应交（元）", 12, "money"), Column("实交（元）", 12, "money"),
        Column("欠交（元）", 12, "money"), Column("已交人次/应交人次", 16), Column("收缴率", 9),
    ]  # fmt: skip
    rows: list[list[Any]] = []
    for i, b in enumerate(sorted(data, key=lambda d: (-d.rate, d.org.path)), 1):
        rows.append([
            i, b.org.name, len(b.rows), b.standard_total, b.due_total, b.paid_total, b.arrears_total,
            f"{b.payments}/{b.expected_payments}", f"{b.rate:.0%}",
        ])  # fmt: skip
    payments = sum(b.payments for b in data)
    expected = sum(b.expected_payments for b in data)
    totals = [
        "合计", f"{len(data)}个支部", sum(len(b.rows) for b in data), sum(b.standard_total for b in data),
        sum(b.due_total for b in data), sum(b.paid_total for b in data), sum(b.arrears_total for b in data),
        f"{payments}/{expected}", f"{payments / expected:.0%}" if expected else "—",
    ]  # fmt: skip
    return Sheet("汇总", f"党费收缴汇总表（{period.title}）", columns, rows, totals, [f"单位：元。导出时间：{now_text}。"])


async def dues_sheets(
    session: AsyncSession,
    branches: Sequence[Org],
    period: ReportPeriod,
    policy: DuesPolicy,
    now_text: str,
    private: bool,
    form_key: str = "dues",
) -> list[Sheet]:
    """The 党费收缴登记表: a sheet per branch, and a summary sheet first when there are several.

    Only the sheets are returned: the member rows they were made from are freed right here, while the
    collector is paused, so that it does not walk them once it resumes."""
    data = await dues_data(session, branches, period, policy, form_key)
    proxies = {k.proxy_by for d in data for r in d.rows for k in r.marks.values() if k.proxy_by is not None}
    names = await org_names(session, sorted(proxies))
    sheets = [_dues_sheet(d, period, names, now_text, private) for d in data]
    if len(data) > 1:
        sheets.insert(0, _dues_summary(data, period, now_text))
    return sheets
