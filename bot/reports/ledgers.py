"""Ledgers (台账) built from the stored answers, laid out like the registers branches keep (domain §6).

One collected answer feeds every ledger that needs it. A ``Ledger`` (``bot.reports.ledger_model``) is
plain data: sheets of typed columns and rows; ``bot.reports.xlsx`` writes it as XLSX or CSV. Totals come
from SQL ``SUM`` / ``COUNT``; rows are the records themselves (one per member, or one per record).

- ``dues``: 党费收缴登记表 (``bot.reports.dues_ledger``).
- an attendance form (``theme_day``): 主题党日签到表 — member × month: 到 / 线上 / 请假（原因） / 未到.
- every other form (三会一课, 工作日志, 志愿服务, config forms): one row per record with the form's
  fields in order, numeric totals, and per-member totals where a field is numeric (志愿服务时长).

Money cells hold integer fen (``Column.kind == "money"``); the writers turn them into yuan.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Numeric, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.tables import Campaign, Member, Org, Response
from bot.domain.dues import DEFAULT_POLICY, DuesPolicy
from bot.forms.render import render_value
from bot.forms.spec import FieldSpec, FieldType, FormSpec
from bot.reports.dues_ledger import ARREARS_STREAK_WARN, DuesBranch, DuesMark, DuesRow, dues_data, dues_sheets
from bot.reports.ledger_model import (
    Column,
    ColumnKind,
    Ledger,
    LedgerMember,
    Sheet,
    campaigns_of,
    gc_paused,
    ledger_members,
    month_expr,
    month_of,
    months_held,
    org_names,
    stamp,
)
from bot.reports.periods import ReportPeriod
from bot.reports.stats import period_filter

__all__ = [  # callers import these from here
    "ARREARS_STREAK_WARN", "Column", "DuesBranch", "DuesMark", "DuesRow", "Ledger", "LedgerMember", "Sheet",
    "attendance_sheets", "build_ledger", "dues_data", "find_form", "ledger_name", "record_sheets",
]  # fmt: skip

ATTENDED = ("present", "online")
ATTENDANCE_MARK = {"present": "到", "online": "线上"}
ABSENT_MARK = "未到"


def _sheet_name(name: str, taken: set[str]) -> str:
    """A tab name: no ``[]:*?/\\``, ≤ 28 characters (room for a number), unique ignoring case as in Excel."""
    base = re.sub(r"[\[\]:*?/\\]", "", name).strip().strip("'")[:28] or "Sheet"
    candidate, n = base, 2
    while candidate.casefold() in taken:
        candidate = f"{base[:26]}{n}"
        n += 1
    taken.add(candidate.casefold())
    return candidate


# ---- 主题党日签到表 ---------------------------------------------------------------------------------


def attendance_key(form: FormSpec) -> str | None:
    return next((f.key for f in form.fields if f.type is FieldType.ATTENDANCE), None)


async def attendance_sheets(
    session: AsyncSession, form: FormSpec, branches: Sequence[Org], period: ReportPeriod, now_text: str
) -> list[Sheet]:
    key = attendance_key(form)
    assert key is not None
    ids = [b.id for b in branches]
    scope = campaigns_of(ids, form.key, period)
    month = month_expr()
    status = Response.values[(key, "status")].as_string()
    reason = Response.values[(key, "reason")].as_string()
    held, _other = await months_held(await session.connection(), scope, ids, period)
    joined = select(Response).join(Campaign, Campaign.id == Response.campaign_id).where(scope)
    marks: dict[tuple[int, int], str] = {}
    responders: set[int] = set()
    rows_stmt = joined.with_only_columns(Response.member_id, month, status, reason).order_by(Response.updated_at)
    for mid, label, st, why in (await session.execute(rows_stmt)).tuples():
        responders.add(mid)
        m = month_of(label)
        if m is None:
            continue
        marks[(mid, m)] = ATTENDANCE_MARK.get(st or "", "") or (f"请假（{why}）" if why else "请假")
    members = await ledger_members(session, ids, responders)
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
        m = month_of(label)
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


class _Record(NamedTuple):
    """One record's columns a ledger shows (not the ORM ``Response``)."""

    name: str  # the member's
    values: dict[str, Any]
    member_id: int
    entered_by: int
    late: bool
    flagged: bool
    flag_note: str
    created_at: dt.datetime
    updated_at: dt.datetime


async def record_sheets(
    session: AsyncSession, form: FormSpec, branches: Sequence[Org], period: ReportPeriod, tz: dt.tzinfo, now_text: str
) -> list[Sheet]:
    ids = [b.id for b in branches]
    where = record_filter(form, ids, period)
    numeric = [f for f in form.fields if f.type in _KIND_OF]
    is_meeting = any(f.key == "meeting_type" for f in form.fields)
    stmt = (
        select(Campaign.org_id, Member.name, Response.values, Response.member_id, Response.entered_by,
               Response.late, Response.flagged, Response.flag_note, Response.created_at, Response.updated_at)
        .select_from(Response)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .join(Member, Member.id == Response.member_id)
        .where(where)
        .order_by(Response.created_at, Response.id)
    )  # fmt: skip
    by_org: dict[int, list[_Record]] = {}
    for row in (await session.execute(stmt)).tuples():
        by_org.setdefault(row[0], []).append(_Record(*row[1:]))
    proxies = {r.entered_by for rs in by_org.values() for r in rs if r.entered_by != r.member_id}
    names = await org_names(session, sorted(proxies))
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
        mine = by_org.get(branch.id, [])
        mine.sort(key=lambda r: (str(r.values.get(date_key) or "") if date_key else "", r.created_at))
        rows: list[list[Any]] = []
        for i, response in enumerate(mine, 1):
            line: list[Any] = [i]
            if not is_meeting:
                line.append(response.name)
            for spec in form.fields:
                value = response.values.get(spec.key)
                line.append(_cell(spec, value))
                if spec.type is FieldType.MEMBERS:
                    line.append(len(value) if isinstance(value, list) else 0)
            if is_meeting:
                line.append(response.name)
            marks = []
            if response.late:
                marks.append("逾期补登")
            if response.entered_by != response.member_id:
                marks.append(f"由{names.get(response.entered_by, '他人')}代登记")
            if response.flagged:
                marks.append(response.flag_note or "待核对")
            line += [stamp(response.updated_at, tz), "；".join(marks)]
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
    now_text = stamp(now, tz)
    with gc_paused():
        if form.key == "dues":
            sheets = await dues_sheets(session, branches, period, policy, now_text, include_private, form.key)
        elif attendance_key(form) is not None and len(form.fields) == 1:
            sheets = await attendance_sheets(session, form, branches, period, now_text)
        else:
            sheets = await record_sheets(session, form, branches, period, tz, now_text)
    taken: set[str] = set()
    for sheet in sheets:
        sheet.name = _sheet_name(sheet.name, taken)
    return Ledger(ledger_name(form), form.key, period, scope_name, sheets, now)
