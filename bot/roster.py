"""Roster import (CSV UTF-8 with/without BOM, or XLSX): validate every row, then write all or nothing."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.orgs import ensure_path
from bot.db.tables import Member
from bot.errors import RosterError

HEADERS = {
    "姓名": "name", "name": "name",
    "手机": "mobile", "手机号": "mobile", "mobile": "mobile",
    "党支部": "branch", "branch": "branch",
    "党小组": "group", "group": "group",
    "角色": "roles", "roles": "roles",
    "人员类别": "category", "category": "category",
    "缴费基数": "dues_base", "dues_base": "dues_base",
    "钉钉userid": "dingtalk_userid", "dingtalk_userid": "dingtalk_userid",
    "企业微信userid": "wecom_userid", "wecom_userid": "wecom_userid",
}  # fmt: skip
KNOWN_ROLES = ("党员", "书记", "副书记", "委员", "组织委员", "宣传委员", "纪检委员", "党小组长", "联络员", "管理员")
CATEGORIES = ("在职", "离退休", "学生", "农民", "其他")
MOBILE_RE = re.compile(r"^1\d{10}$")


@dataclass(frozen=True, slots=True)
class RosterRow:
    row: int
    name: str
    branch: str
    mobile: str | None
    group: str
    roles: tuple[str, ...]
    category: str
    dues_base_fen: int | None
    dingtalk_userid: str | None
    wecom_userid: str | None


@dataclass(slots=True)
class ImportReport:
    created: int = 0
    updated: int = 0
    rows: list[RosterRow] = field(default_factory=list)


def _read_csv(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8-sig")
    return [row for row in csv.reader(io.StringIO(text))]


def _read_xlsx(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheet = book.worksheets[0]
    rows = []
    for values in sheet.iter_rows(values_only=True):
        rows.append(["" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)) for v in values])
    book.close()
    return rows


def read_table(path: Path) -> list[list[str]]:
    """Sync file parsing; callers run it in a worker thread."""
    if not path.is_file():
        raise RosterError([(0, f"找不到文件 {path}")])
    data = path.read_bytes()
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            return _read_xlsx(data)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise RosterError([(0, f"无法读取Excel文件（{type(exc).__name__}），请确认是 .xlsx 格式")]) from exc
    if path.suffix.lower() in (".csv", ".txt"):
        try:
            return _read_csv(data)
        except UnicodeDecodeError as exc:
            raise RosterError([(0, "CSV文件不是UTF-8编码（Excel中请选择“CSV UTF-8”格式另存）")]) from exc
    raise RosterError([(0, f"不支持的文件类型 {path.suffix}（请使用 .csv 或 .xlsx）")])


def _split_roles(raw: str) -> list[str]:
    return [r.strip() for r in re.split(r"[、,，;；/\s]+", raw) if r.strip()]


def _parse_row(number: int, cells: dict[str, str], problems: list[tuple[int, str]]) -> RosterRow | None:
    before = len(problems)
    name = cells.get("name", "").strip()
    branch = cells.get("branch", "").strip()
    if not name:
        problems.append((number, "姓名不能为空"))
    if not branch:
        problems.append((number, "党支部不能为空"))
    mobile = re.sub(r"[\s-]", "", cells.get("mobile", "")) or None
    if mobile and not MOBILE_RE.match(mobile):
        problems.append((number, f"手机号“{mobile}”不是11位手机号"))
    roles = _split_roles(cells.get("roles", "")) or ["党员"]
    for role in roles:
        if role not in KNOWN_ROLES:
            problems.append((number, f"未知角色“{role}”（可用：{'、'.join(KNOWN_ROLES)}）"))
    category = cells.get("category", "").strip() or "在职"
    if category not in CATEGORIES:
        problems.append((number, f"未知人员类别“{category}”（可用：{'、'.join(CATEGORIES)}）"))
    base_fen = None
    raw_base = cells.get("dues_base", "").strip().replace(",", "")
    if raw_base:
        try:
            value = Decimal(raw_base)
            if value < 0 or value > Decimal("10000000"):
                raise InvalidOperation
            base_fen = int((value * 100).quantize(Decimal("1")))
        except InvalidOperation:
            problems.append((number, f"缴费基数“{raw_base}”不是有效金额（例如 6500 或 6500.50）"))
    if len(problems) > before:
        return None
    if "党员" not in roles:
        roles.insert(0, "党员")
    return RosterRow(
        row=number,
        name=name,
        branch=branch,
        mobile=mobile,
        group=cells.get("group", "").strip(),
        roles=tuple(dict.fromkeys(roles)),
        category=category,
        dues_base_fen=base_fen,
        dingtalk_userid=cells.get("dingtalk_userid", "").strip() or None,
        wecom_userid=(cells.get("wecom_userid", "").strip().lower() or None),
    )


def _check_unique(rows: list[RosterRow], problems: list[tuple[int, str]]) -> None:
    for attr, label in (("mobile", "手机号"), ("dingtalk_userid", "钉钉UserID"), ("wecom_userid", "企业微信UserID")):
        first: dict[str, int] = {}
        for row in rows:
            value = getattr(row, attr)
            if not value:
                continue
            if value in first:
                problems.append((row.row, f"{label}“{value}”与第{first[value]}行重复"))
            else:
                first[value] = row.row


def parse_roster(table: list[list[str]]) -> list[RosterRow]:
    """Validate the whole table; raise RosterError listing every problem with its row number."""
    if not table:
        raise RosterError([(1, "文件是空的，第一行应为表头（姓名、手机、党支部……）")])
    header = [HEADERS.get(h.strip().lower(), HEADERS.get(h.strip(), "")) for h in table[0]]
    problems: list[tuple[int, str]] = []
    for required, label in (("name", "姓名"), ("branch", "党支部")):
        if required not in header:
            problems.append((1, f"缺少必填表头“{label}”"))
    if problems:
        raise RosterError(problems)
    rows: list[RosterRow] = []
    for index, raw in enumerate(table[1:], start=2):
        if not any(c.strip() for c in raw):
            continue
        cells = {key: (raw[i] if i < len(raw) else "") for i, key in enumerate(header) if key}
        parsed = _parse_row(index, cells, problems)
        if parsed is not None:
            rows.append(parsed)
    _check_unique(rows, problems)
    if problems:
        raise RosterError(sorted(problems))
    return rows


async def _find_existing(session: AsyncSession, row: RosterRow, branch_id: int) -> Member | None:
    if row.mobile:
        found = (await session.execute(select(Member).where(Member.mobile == row.mobile))).scalar_one_or_none()
        if found is not None:
            return found
    stmt = select(Member).where(Member.name == row.name, Member.org_id == branch_id)
    return (await session.execute(stmt)).scalars().first()


async def apply_roster(session: AsyncSession, rows: list[RosterRow], now: dt.datetime) -> ImportReport:
    """Write validated rows in the caller's transaction (the caller commits or rolls back)."""
    report = ImportReport(rows=rows)
    for row in rows:
        branch = await ensure_path(session, row.branch, now, leaf_kind="branch")
        group_id = None
        if row.group:
            group = await ensure_path(session, f"{branch.path}/{row.group}", now, leaf_kind="group")
            group_id = group.id
        member = await _find_existing(session, row, branch.id)
        if member is None:
            member = Member(name=row.name, org_id=branch.id, created_at=now)
            session.add(member)
            report.created += 1
        else:
            report.updated += 1
        member.name = row.name
        member.org_id = branch.id
        member.group_id = group_id
        member.mobile = row.mobile
        member.roles = Member.pack_roles(list(row.roles))
        member.category = row.category
        member.dues_base_fen = row.dues_base_fen
        member.dingtalk_userid = row.dingtalk_userid or member.dingtalk_userid
        member.wecom_userid = row.wecom_userid or member.wecom_userid
        member.active = True
        try:
            await session.flush()
        except IntegrityError as exc:
            raise RosterError([(row.row, "手机号或平台UserID与名册中另一位党员重复")]) from exc
    return report


async def import_roster_file(session: AsyncSession, path: Path, now: dt.datetime) -> ImportReport:
    table = await asyncio.to_thread(read_table, path)
    rows = parse_roster(table)
    return await apply_roster(session, rows, now)
