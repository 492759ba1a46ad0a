"""Ledgers (台账) built from the stored answers, laid out like the registers branches keep (domain §6).

One collected answer feeds every ledger that needs it. A ``Ledger`` is plain data (sheets of typed
columns and rows); ``bot.reports.xlsx`` writes it as XLSX or CSV. Totals come from SQL ``SUM`` /
``COUNT``; rows are the records themselves (one per member, or one per record). The dues ledger reads
one ``GROUP BY`` (branch, member, month) and adds its rows up into the member, month and branch totals,
rather than scanning the period's answers once more per total.

- ``dues``: 党费收缴登记表 — member × month paid amounts, the standard from ``compute_dues``, due,
  paid, arrears, remarks (late / proxy / to check), a totals row; a summary sheet for several branches.
- an attendance form (``theme_day``): 主题党日签到表 — member × month: 到 / 线上 / 请假（原因） / 未到.
- every other form (三会一课, 工作日志, 志愿服务, config forms): one row per record with the form's
  fields in order, numeric totals, and per-member totals where a field is numeric (志愿服务时长).

Money cells hold integer fen (``Column.kind == "money"``); the writers turn them into yuan.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from sqlalchemy import BigInteger, ColumnElement, Numeric, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.tables import Campaign, Member, Org, Response
from bot.domain.dues import DEFAULT_POLICY, DuesCategory, DuesPolicy, DuesStandard, compute_dues, format_rate
from bot.errors import UserInputError
from bot.forms.render import render_value
from bot.forms.spec import FieldSpec, FieldType, FormSpec
from bot.reports.periods import ReportPeriod
from bot.reports.stats import period_filter

ColumnKind = Literal["text", "money", "number", "int"]
ATTENDED = ("present", "online")
ATTENDANCE_MARK = {"present": "到", "online": "线上"}
ABSENT_MARK = "未到"
ARREARS_STREAK_WARN = 3  # consecutive unpaid months that deserve a remark (domain §1.7: remind at 3, alert at 5)


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    width: float = 12
    kind: ColumnKind = "text"


@dataclass
class Sheet:
    name: str  # the tab (≤ 31 characters)
    title: str  # first row, e.g. 第一党支部党费收缴登记表（2026年度）
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    totals: list[Any] | None = None
    notes: list[str] = field(default_factory=list)
    branch: str = ""
    freeze_columns: int = 2  # columns kept visible when scrolling right (序号, 姓名)


@dataclass
class Ledger:
    name: str  # 党费收缴登记表
    form_key: str
    period: ReportPeriod
    scope_name: str  # 第一党支部 / 机关党委 / 全部支部
    sheets: list[Sheet]
    generated_at: dt.datetime

    @property
    def display_name(self) -> str:
        return f"{self.scope_name}{self.name}（{self.period.title}）"

    def file_stem(self, org_hint: str = "") -> str:
        """An ASCII file name stem (platform uploads and shells like those best)."""
        stamp = self.generated_at.strftime("%Y%m%d%H%M%S")
        hint = re.sub(r"[^A-Za-z0-9_-]", "", org_hint)
        return "-".join(p for p in (self.form_key, self.period.label, hint, stamp) if p)


# ---- shared helpers ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _month_of(label: str) -> int | None:
    """``2026-11`` / ``2026-11-27`` → 11."""
    m = re.match(r"^\d{4}-(\d{2})(?:-\d{2})?$", label or "")
    return int(m.group(1)) if m else None


def _month_end(year: int, month: int) -> dt.date:
    """The last day of a month (a member added to the roster after it owes nothing for it)."""
    return dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)


def _month_expr() -> ColumnElement[str]:
    return func.substr(Campaign.period, 1, 7)


def _stamp(at: dt.datetime, tz: dt.tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _sheet_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "", name)[:28] or "Sheet"
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base[:26]}{n}"
        n += 1
    taken.add(candidate)
    return candidate


async def _org_names(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Member.id, Member.name).where(Member.id.in_(list(ids))))
    return dict(rows.tuples().all())


def standard_of(member: Member, policy: DuesPolicy = DEFAULT_POLICY) -> DuesStandard | None:
    """The member's monthly dues standard, or ``None`` (unknown category, or no base on file)."""
    if member.category not in DuesCategory._value2member_map_:
        return None
    try:
        return compute_dues(member.dues_base_fen, DuesCategory(member.category), policy)
    except UserInputError:
        return None


async def _ledger_members(
    session: AsyncSession, org_ids: Sequence[int], responders: Any
) -> dict[int, list[Member]]:
    """Active members of each org, plus anyone (now inactive) who answered in the period, by id."""
    stmt = (
        select(Member)
        .where(Member.org_id.in_(list(org_ids)), or_(Member.active.is_(True), Member.id.in_(responders)))
        .order_by(Member.org_id, Member.id)
    )
    out: dict[int, list[Member]] = {oid: [] for oid in org_ids}
    for member in (await session.execute(stmt)).scalars().all():
        out.setdefault(member.org_id, []).append(member)
    return out


def _campaigns_of(org_ids: Sequence[int], form_key: str, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(Campaign.org_id.in_(list(org_ids)), Campaign.form_key == form_key, period_filter(period))


# ---- 党费收缴登记表 ---------------------------------------------------------------------------------


class DuesCell(NamedTuple):  # a tuple: one per answered (member, month), 200,000+ in a large ledger
    amount_fen: int
    late: bool
    flagged: bool
    proxy_by: int | None  # member id of who entered it for them


@dataclass
class DuesRow:
    member: Member
    standard: DuesStandard | None
    cells: dict[int, DuesCell]  # month → cell
    paid_fen: int  # SQL SUM over the period (the member's month sums added up)
    due_fen: int | None
    arrears_fen: int | None
    unpaid_months: list[int]
    streak: int  # consecutive unpaid months up to the latest collected month
    owed_months: list[int] = field(default_factory=list)  # collected months since the member joined


@dataclass
class DuesBranch:
    org: Org
    months_collected: list[int]
    rows: list[DuesRow]
    month_totals: dict[int, int]  # month → fen (sum of the SQL month cells)
    paid_total: int  # fen (sum of the SQL month cells)
    payments: int  # answered (member, month) pairs (rows of the SQL GROUP BY)

    @property
    def expected_payments(self) -> int:
        return sum(len(r.owed_months) for r in self.rows)

    @property
    def rate(self) -> float:
        return min(1.0, self.payments / self.expected_payments) if self.expected_payments else 1.0


async def dues_data(
    session: AsyncSession,
    branches: Sequence[Org],
    period: ReportPeriod,
    policy: DuesPolicy = DEFAULT_POLICY,
    form_key: str = "dues",
) -> list[DuesBranch]:
    """Per branch: the months collected, each member's payments by month and the totals.

    Four queries whatever the size: the months collected, the members, one ``GROUP BY`` (branch, member)
    with a column per month, and the late / flagged / proxy marks; the totals are sums over those rows.
    """
    ids = [b.id for b in branches]
    if not ids:
        return []
    scope = _campaigns_of(ids, form_key, period)
    month = _month_expr()
    months: dict[int, set[int]] = {oid: set() for oid in ids}
    for oid, label in (await session.execute(select(Campaign.org_id, month).where(scope).distinct())).tuples():
        m = _month_of(label)
        if m is not None and m in period.months:
            months[oid].add(m)
    joined = select(Response).join(Campaign, Campaign.id == Response.campaign_id).where(scope)
    responders = joined.with_only_columns(Response.member_id).scalar_subquery()
    members = await _ledger_members(session, ids, responders)
    # Per (branch, member): one row with a column per month of the period (NULL: no answer that month),
    # the member's total and how many (member, month) pairs they answered — 20,000 rows for 20,000
    # members rather than one per answer. Late / flagged / proxy marks are rare: a second GROUP BY
    # (branch, member, month) reads only the answers that carry one.
    labels = {m: f"{period.year}-{m:02d}" for m in period.months}
    fen = func.coalesce(Response.amount_fen, 0)
    pivot_stmt = joined.with_only_columns(
        Campaign.org_id,
        Response.member_id,
        func.count(func.distinct(month)),
        cast(func.coalesce(func.sum(Response.amount_fen), 0), BigInteger),  # PostgreSQL's SUM(bigint) is numeric
        *[cast(func.sum(case((month == label, fen), else_=None)), BigInteger) for label in labels.values()],
    ).group_by(Campaign.org_id, Response.member_id)
    cells: dict[tuple[int, int], dict[int, DuesCell]] = {}
    paid: dict[int, int] = {}
    month_totals: dict[int, dict[int, int]] = {oid: {} for oid in ids}
    org_totals: dict[int, int] = {}
    pair_counts: dict[int, int] = {}
    order = list(labels)
    plain: dict[int, DuesCell] = {}  # unmarked cells are shared per amount: members pay the same each month
    for oid, mid, pairs, total, *by_month in (await session.execute(pivot_stmt)).tuples():
        paid[mid] = paid.get(mid, 0) + total
        org_totals[oid] = org_totals.get(oid, 0) + total
        pair_counts[oid] = pair_counts.get(oid, 0) + pairs
        mine = cells.setdefault((oid, mid), {})
        sums = month_totals[oid]
        for m, amount in zip(order, by_month, strict=True):
            if amount is not None:
                cell = plain.get(amount)
                if cell is None:
                    cell = plain[amount] = DuesCell(amount, False, False, None)
                mine[m] = cell
                sums[m] = sums.get(m, 0) + amount
    proxy = Response.entered_by != Response.member_id
    marks_stmt = (
        joined.with_only_columns(
            Campaign.org_id,
            Response.member_id,
            month,
            func.sum(case((Response.late.is_(True), 1), else_=0)),
            func.sum(case((Response.flagged.is_(True), 1), else_=0)),
            func.max(case((proxy, Response.entered_by), else_=None)),
        )
        .where(or_(Response.late.is_(True), Response.flagged.is_(True), proxy))
        .group_by(Campaign.org_id, Response.member_id, month)
    )
    for oid, mid, label, late, flagged, by in (await session.execute(marks_stmt)).tuples():
        m = _month_of(label)
        mine = cells.get((oid, mid), {})
        if m is not None and m in mine:
            mine[m] = mine[m]._replace(late=bool(late), flagged=bool(flagged), proxy_by=by)
    out = []
    for branch in branches:
        collected = sorted(months[branch.id])
        ends = [(m, _month_end(period.year, m)) for m in collected]
        rows = []
        for member in members.get(branch.id, []):
            mcells = cells.get((branch.id, member.id), {})
            std = standard_of(member, policy)
            joined_on = member.created_at.date()
            owed = [m for m, end in ends if end >= joined_on]
            unpaid = [m for m in owed if m not in mcells]
            streak = 0
            for m in reversed(owed):
                if m in mcells:
                    break
                streak += 1
            paid_fen = int(paid.get(member.id) or 0)
            due = std.amount_fen * len(owed) if std is not None else None
            arrears = max(0, due - paid_fen) if due is not None else None
            rows.append(DuesRow(member, std, mcells, paid_fen, due, arrears, unpaid, streak, owed))
        total = org_totals.get(branch.id, 0)
        out.append(DuesBranch(branch, collected, rows, month_totals[branch.id], total, pair_counts.get(branch.id, 0)))
    return out


def _dues_remarks(row: DuesRow, names: dict[int, str]) -> str:
    notes = []
    for m, cell in sorted(row.cells.items()):
        if cell.late:
            notes.append(f"{m}月逾期补交")
        if cell.proxy_by is not None:
            notes.append(f"{m}月由{names.get(cell.proxy_by, '他人')}代登记")
        if cell.flagged:
            notes.append(f"{m}月金额待核对")
    if row.standard is None:
        notes.append("未登记缴费基数，无法计算标准")
    elif row.standard.capped:
        notes.append("按每月1000元封顶")
    if row.unpaid_months:
        notes.append("未交：" + "、".join(f"{m}月" for m in row.unpaid_months))
    if row.streak >= ARREARS_STREAK_WARN:
        notes.append(f"已连续{row.streak}个月未交")
    return "；".join(notes)


def _dues_sheet(data: DuesBranch, period: ReportPeriod, names: dict[int, str], now_text: str, private: bool) -> Sheet:
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
    for i, row in enumerate(data.rows, 1):
        std = row.standard
        line: list[Any] = [i, row.member.name, row.member.category]
        if private:
            line.append(row.member.dues_base_fen)
        line += [
            (format_rate(std.rate) if std.rate is not None else "定额") if std is not None else "",
            std.amount_fen if std is not None else None,
        ]
        line += [row.cells[m].amount_fen if m in row.cells else None for m in months]
        line += [row.due_fen, row.paid_fen, row.arrears_fen, len(row.unpaid_months), _dues_remarks(row, names)]
        rows.append(line)
    standards = [r.standard.amount_fen for r in data.rows if r.standard is not None]
    totals: list[Any] = ["合计", f"{len(data.rows)}人", ""]
    if private:
        totals.append(None)
    totals += ["", sum(standards)]
    totals += [data.month_totals.get(m, 0) if m in data.months_collected else None for m in months]
    totals += [
        sum(r.due_fen or 0 for r in data.rows), data.paid_total, sum(r.arrears_fen or 0 for r in data.rows),
        sum(len(r.unpaid_months) for r in data.rows), f"收缴率{data.rate:.0%}",
    ]  # fmt: skip
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
            i, b.org.name, len(b.rows), sum(r.standard.amount_fen for r in b.rows if r.standard is not None),
            sum(r.due_fen or 0 for r in b.rows), b.paid_total, sum(r.arrears_fen or 0 for r in b.rows),
            f"{b.payments}/{b.expected_payments}", f"{b.rate:.0%}",
        ])  # fmt: skip
    payments = sum(b.payments for b in data)
    expected = sum(b.expected_payments for b in data)
    totals = [
        "合计", f"{len(data)}个支部", sum(len(b.rows) for b in data), sum(r[3] for r in rows), sum(r[4] for r in rows),
        sum(b.paid_total for b in data), sum(r[6] for r in rows), f"{payments}/{expected}",
        f"{payments / expected:.0%}" if expected else "—",
    ]  # fmt: skip
    return Sheet("汇总", f"党费收缴汇总表（{period.title}）", columns, rows, totals, [f"单位：元。导出时间：{now_text}。"])


# ---- 主题党日签到表 ---------------------------------------------------------------------------------


def attendance_key(form: FormSpec) -> str | None:
    return next((f.key for f in form.fields if f.type is FieldType.ATTENDANCE), None)


async def attendance_sheets(
    session: AsyncSession, form: FormSpec, branches: Sequence[Org], period: ReportPeriod, now_text: str
) -> list[Sheet]:
    key = attendance_key(form)
    assert key is not None
    ids = [b.id for b in branches]
    scope = _campaigns_of(ids, form.key, period)
    month = _month_expr()
    status = Response.values[(key, "status")].as_string()
    reason = Response.values[(key, "reason")].as_string()
    held: dict[int, set[int]] = {oid: set() for oid in ids}
    for oid, label in (await session.execute(select(Campaign.org_id, month).where(scope).distinct())).tuples():
        m = _month_of(label)
        if m is not None and m in period.months:
            held[oid].add(m)
    joined = select(Response).join(Campaign, Campaign.id == Response.campaign_id).where(scope)
    members = await _ledger_members(session, ids, joined.with_only_columns(Response.member_id).scalar_subquery())
    marks: dict[tuple[int, int], str] = {}
    rows_stmt = joined.with_only_columns(Response.member_id, month, status, reason).order_by(Response.updated_at)
    for mid, label, st, why in (await session.execute(rows_stmt)).tuples():
        m = _month_of(label)
        if m is None:
            continue
        marks[(mid, m)] = ATTENDANCE_MARK.get(st or "", "") or (f"请假（{why}）" if why else "请假")
    attended = case((status.in_(ATTENDED), 1), else_=0)
    leave = case((status == "leave", 1), else_=0)
    per_member = {
        mid: (int(a or 0), int(lv or 0))
        for mid, a, lv in (
            await session.execute(
                joined.with_only_columns(Response.member_id, func.sum(attended), func.sum(leave)).group_by(
                    Response.member_id
                )
            )
        ).tuples()
    }
    per_month: dict[tuple[int, int], int] = {}
    month_stmt = joined.with_only_columns(Campaign.org_id, month, func.sum(attended)).group_by(Campaign.org_id, month)
    for oid, label, n in (await session.execute(month_stmt)).tuples():
        m = _month_of(label)
        if m is not None:
            per_month[(oid, m)] = per_month.get((oid, m), 0) + int(n or 0)
    sheets = []
    for branch in branches:
        months = period.months
        columns = [Column("序号", 6, "int"), Column("姓名", 10)]
        columns += [Column(f"{m}月", 12) for m in months]
        columns += [Column("参加次数", 9, "int"), Column("请假次数", 9, "int"), Column("未到次数", 9, "int"),
                    Column("参加率", 9)]  # fmt: skip
        rows: list[list[Any]] = []
        done = sorted(held[branch.id])
        for i, member in enumerate(members.get(branch.id, []), 1):
            cells = [marks.get((member.id, m), ABSENT_MARK if m in done else "") for m in months]
            present, on_leave = per_member.get(member.id, (0, 0))
            absent = sum(1 for m in done if (member.id, m) not in marks)
            rate = f"{present / len(done):.0%}" if done else "—"
            rows.append([i, member.name, *cells, present, on_leave, absent, rate])
        count = len(members.get(branch.id, []))
        totals: list[Any] = ["合计", f"{count}人"]
        totals += [f"参加{per_month.get((branch.id, m), 0)}/{count}" if m in done else "" for m in months]
        totals += [sum(r[-4] for r in rows), sum(r[-3] for r in rows), sum(r[-2] for r in rows), ""]
        held_text = "、".join(f"{m}月" for m in done) or "无"
        notes = [f"“到”为现场参加，“线上”为线上参加；已开展月份：{held_text}。导出时间：{now_text}。"]
        sheets.append(Sheet(branch.name, f"{branch.name}{ledger_name(form)}（{period.title}）",
                            columns, rows, totals, notes, branch.name))  # fmt: skip
    return sheets


# ---- record ledgers (三会一课, 工作日志, 志愿服务, config forms) ----------------------------------------


_KIND_OF: dict[FieldType, ColumnKind] = {
    FieldType.MONEY: "money",
    FieldType.INTEGER: "int",
    FieldType.DECIMAL: "number",
}
_WIDTH_OF: dict[FieldType, float] = {
    FieldType.DATE: 12, FieldType.TIME: 8, FieldType.CHOICE: 12, FieldType.YESNO: 6, FieldType.MONEY: 11,
    FieldType.INTEGER: 9, FieldType.DECIMAL: 11, FieldType.ATTENDANCE: 12, FieldType.MEMBERS: 30,
}  # fmt: skip


def _date_field(form: FormSpec) -> str | None:
    return next((f.key for f in form.fields if f.type is FieldType.DATE), None)


def record_filter(form: FormSpec, org_ids: Sequence[int], period: ReportPeriod) -> ColumnElement[bool]:
    """Records of ``form`` in these orgs whose own date (first date field) lies in ``period``;
    records without a date count by their campaign's period."""
    date_key = _date_field(form)
    base = and_(Campaign.org_id.in_(list(org_ids)), Campaign.form_key == form.key)
    if date_key is None:
        return and_(base, period_filter(period))
    day = Response.values[date_key].as_string()
    in_period = and_(day >= period.first.isoformat(), day <= period.last.isoformat())
    return and_(base, or_(in_period, and_(day.is_(None), period_filter(period))))


def _cell(spec: FieldSpec, value: Any) -> Any:
    if value is None or value == "":
        return None
    if spec.type is FieldType.MONEY and isinstance(value, int):
        return value
    if spec.type is FieldType.INTEGER and isinstance(value, int):
        return value
    if spec.type is FieldType.DECIMAL:
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return str(value)
    if spec.type is FieldType.DATE:
        return str(value)
    text = render_value(spec, value)
    return None if text == "无" else text


def _numeric_expr(spec: FieldSpec) -> ColumnElement[Any]:
    return cast(Response.values[spec.key].as_string(), Numeric)


def _number(value: Any, spec: FieldSpec) -> Any:
    if value is None:
        return 0 if spec.type is not FieldType.DECIMAL else Decimal(0)
    if spec.type is FieldType.DECIMAL:
        return Decimal(str(value)).quantize(Decimal("0.01")).normalize()
    return int(Decimal(str(value)))


async def record_sheets(
    session: AsyncSession, form: FormSpec, branches: Sequence[Org], period: ReportPeriod, tz: dt.tzinfo, now_text: str
) -> list[Sheet]:
    ids = [b.id for b in branches]
    where = record_filter(form, ids, period)
    numeric = [f for f in form.fields if f.type in _KIND_OF]
    is_meeting = any(f.key == "meeting_type" for f in form.fields)
    stmt = (
        select(Response, Campaign.org_id, Member.name)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .join(Member, Member.id == Response.member_id)
        .where(where)
        .order_by(Response.created_at, Response.id)
    )
    records = (await session.execute(stmt)).tuples().all()
    names = await _org_names(session, sorted({r.entered_by for r, _o, _n in records if r.entered_by != r.member_id}))
    sums: dict[int, list[Any]] = {}
    if numeric:
        sum_stmt = (
            select(Campaign.org_id, func.count(Response.id), *[func.sum(_numeric_expr(f)) for f in numeric])
            .select_from(Response)
            .join(Campaign, Campaign.id == Response.campaign_id)
            .where(where)
            .group_by(Campaign.org_id)
        )
        for oid, _n, *values in (await session.execute(sum_stmt)).tuples():
            sums[oid] = [_number(v, f) for v, f in zip(values, numeric, strict=True)]
    counts = dict(
        (await session.execute(
            select(Campaign.org_id, func.count(Response.id)).select_from(Response)
            .join(Campaign, Campaign.id == Response.campaign_id).where(where).group_by(Campaign.org_id)
        )).tuples().all()
    )  # fmt: skip
    date_key = _date_field(form)
    who = "登记人" if is_meeting else "姓名"
    sheets = []
    for branch in branches:
        columns = [Column("序号", 6, "int")]
        if not is_meeting:
            columns.append(Column(who, 10))
        for spec in form.fields:
            columns.append(Column(spec.label, _WIDTH_OF.get(spec.type, 24 if spec.max_length > 100 else 14),
                                  _KIND_OF.get(spec.type, "text")))  # fmt: skip
            if spec.type is FieldType.MEMBERS:
                columns.append(Column("人数", 6, "int"))
        if is_meeting:
            columns.append(Column(who, 10))
        columns += [Column("登记时间", 17), Column("备注", 24)]
        mine = [(r, n) for r, oid, n in records if oid == branch.id]
        mine.sort(key=lambda rn: (str(rn[0].values.get(date_key) or "") if date_key else "", rn[0].created_at))
        rows: list[list[Any]] = []
        for i, (response, name) in enumerate(mine, 1):
            line: list[Any] = [i]
            if not is_meeting:
                line.append(name)
            for spec in form.fields:
                value = response.values.get(spec.key)
                line.append(_cell(spec, value))
                if spec.type is FieldType.MEMBERS:
                    line.append(len(value) if isinstance(value, list) else 0)
            if is_meeting:
                line.append(name)
            marks = []
            if response.late:
                marks.append("逾期补登")
            if response.entered_by != response.member_id:
                marks.append(f"由{names.get(response.entered_by, '他人')}代登记")
            if response.flagged:
                marks.append(response.flag_note or "待核对")
            line += [_stamp(response.updated_at, tz), "；".join(marks)]
            rows.append(line)
        totals: list[Any] | None = None
        if numeric or rows:
            totals = ["合计"] + [None] * (len(columns) - 1)
            totals[1] = f"共{int(counts.get(branch.id, 0))}条"
            for spec, value in zip(numeric, sums.get(branch.id, [None] * len(numeric)), strict=True):
                index = next(i for i, c in enumerate(columns) if c.header == spec.label)
                totals[index] = value if value is not None else _number(None, spec)
        sheets.append(Sheet(branch.name, f"{branch.name}{form.ledger or form.name}（{period.title}）", columns, rows,
                            totals, [f"导出时间：{now_text}。"], branch.name, freeze_columns=2))  # fmt: skip
    if numeric and not is_meeting:
        sheets.extend(await _per_member_sheets(session, form, branches, where, numeric, period))
    return sheets


async def _per_member_sheets(
    session: AsyncSession,
    form: FormSpec,
    branches: Sequence[Org],
    where: ColumnElement[bool],
    numeric: list[FieldSpec],
    period: ReportPeriod,
) -> list[Sheet]:
    """Per member: how many records and the sum of each numeric field (志愿服务时长合计), in SQL."""
    stmt = (
        select(Campaign.org_id, Member.name, func.count(Response.id), *[func.sum(_numeric_expr(f)) for f in numeric])
        .select_from(Response)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .join(Member, Member.id == Response.member_id)
        .where(where)
        .group_by(Campaign.org_id, Member.id, Member.name)
        .order_by(Campaign.org_id, Member.id)
    )
    by_org: dict[int, list[list[Any]]] = {}
    for oid, name, n, *values in (await session.execute(stmt)).tuples():
        by_org.setdefault(oid, []).append([name, int(n), *[_number(v, f) for v, f in zip(values, numeric, strict=True)]])
    sheets = []
    for branch in branches:
        columns = [Column("序号", 6, "int"), Column("姓名", 10), Column("次数", 8, "int")]
        columns += [Column(f"{f.label}合计", 16, _KIND_OF[f.type]) for f in numeric]
        rows = [[i, *r] for i, r in enumerate(by_org.get(branch.id, []), 1)]
        totals: list[Any] = ["合计", f"{len(rows)}人", sum(r[2] for r in rows)]
        for j, spec in enumerate(numeric):
            totals.append(sum((r[3 + j] for r in rows), _number(None, spec)))
        sheets.append(Sheet(f"{branch.name}个人合计", f"{branch.name}{form.name}个人合计（{period.title}）", columns,
                            rows, totals, [], branch.name))  # fmt: skip
    return sheets


# ---- entry point -------------------------------------------------------------------------------------


def find_form(forms: Mapping[str, FormSpec], text: str) -> FormSpec | None:
    """A form by key (``dues``), name (``党费``), ledger name or keyword (``主题党日``)."""
    t = text.strip()
    if t in forms:
        return forms[t]
    lowered = t.lower()
    for form in forms.values():
        if lowered in (form.key.lower(), form.name.lower(), (form.ledger or "").lower(), *form.keywords):
            return form
    return None


def ledger_name(form: FormSpec) -> str:
    if form.key == "dues":
        return "党费收缴登记表"
    if attendance_key(form) is not None:
        return "主题党日签到表" if form.key == "theme_day" else f"{form.name}签到表"
    return form.ledger or f"{form.name}登记表"


async def build_ledger(
    session: AsyncSession,
    form: FormSpec,
    period: ReportPeriod,
    branches: Sequence[Org],
    *,
    now: dt.datetime,
    tz: dt.tzinfo,
    scope_name: str,
    policy: DuesPolicy = DEFAULT_POLICY,
    include_private: bool = True,
) -> Ledger:
    """The ledger of ``form`` for ``branches`` in ``period`` (one sheet per branch, plus summaries)."""
    now_text = _stamp(now, tz)
    taken: set[str] = set()
    if form.key == "dues":
        data = await dues_data(session, branches, period, policy, form.key)
        proxies = {c.proxy_by for d in data for r in d.rows for c in r.cells.values() if c.proxy_by is not None}
        names = await _org_names(session, sorted(proxies))
        sheets = [_dues_sheet(d, period, names, now_text, include_private) for d in data]
        if len(data) > 1:
            sheets.insert(0, _dues_summary(data, period, now_text))
    elif attendance_key(form) is not None and len(form.fields) == 1:
        sheets = await attendance_sheets(session, form, branches, period, now_text)
    else:
        sheets = await record_sheets(session, form, branches, period, tz, now_text)
    for sheet in sheets:
        sheet.name = _sheet_name(sheet.name, taken)
    return Ledger(ledger_name(form), form.key, period, scope_name, sheets, now)
