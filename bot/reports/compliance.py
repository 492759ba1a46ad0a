"""Organisational-life compliance per branch and period (domain §2.2, §2.5, §5).

Checked from the collected data:
- 三会一课 held and recorded: branch committee (monthly), Party group (monthly, per group), general
  meeting (quarterly), Party lecture (quarterly by default): a meeting record with the matching
  ``meeting_type`` dated in the period (a record without a type counts for the schedule it answered);
- theme Party day (monthly): a theme-day collection of the branch in the month with someone present;
- dues: the collection rate of the period, and members with 3+ consecutive unpaid months (up to the
  period's end, over the previous 12 months);
- meeting records missing fields (§2.3): place, host, topic, attendees, absentees when people were
  missing, resolutions for general and committee meetings.

Cadences follow the schedules (``[[schedules]]`` can make the lecture monthly or yearly, or remove an
item); pass ``cadences`` built from them. Counts come from ``GROUP BY`` queries.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.tables import Campaign, Member, Org, Response
from bot.reports.ledgers import ARREARS_STREAK_WARN, DuesBranch, dues_data
from bot.reports.periods import PeriodKind, ReportPeriod, month_period, sub_periods
from bot.reports.stats import period_filter

MEETING_FORM = "meeting"
THEME_DAY_FORM = "theme_day"
DUES_FORM = "dues"


@dataclass(frozen=True, slots=True)
class MeetingRule:
    key: str  # meeting_type value
    label: str
    schedule_key: str  # the default schedule that asks for it


MEETING_RULES: tuple[MeetingRule, ...] = (
    MeetingRule("branch_committee", "支部委员会会议", "branch_committee_meeting"),
    MeetingRule("group", "党小组会", "party_group_meeting"),
    MeetingRule("branch_general", "支部党员大会", "general_meeting"),
    MeetingRule("lecture", "党课", "party_lecture"),
)
THEME_DAY_SCHEDULE = "theme_day"
TYPE_LABELS = {r.key: r.label for r in MEETING_RULES}
#: schedule key → cadence; the national defaults (domain §2.2), lecture quarterly (configurable).
DEFAULT_CADENCES: dict[str, PeriodKind] = {
    "branch_committee_meeting": "month",
    "party_group_meeting": "month",
    "general_meeting": "quarter",
    "party_lecture": "quarter",
    "theme_day": "month",
}
CADENCE_ZH = {"month": "每月", "quarter": "每季度", "year": "每年"}
REQUIRED_FIELDS = {"place": "地点", "host": "主持人", "topic": "议题", "attendees": "参会人员"}
RESOLUTION_TYPES = ("branch_general", "branch_committee")
FULL_ATTENDANCE_TYPES = ("branch_general", "lecture")


@dataclass
class ComplianceItem:
    key: str
    label: str
    ok: bool
    detail: str
    people: list[str] = field(default_factory=list)  # names behind the detail (members in arrears)
    pending: bool = False  # the period for this item has not ended yet


@dataclass
class BranchCompliance:
    org: Org
    period: ReportPeriod
    items: list[ComplianceItem]

    @property
    def passed(self) -> int:
        return sum(1 for i in self.items if i.ok)

    @property
    def failed(self) -> list[ComplianceItem]:
        return [i for i in self.items if not i.ok]


def cadences_from(schedules: Iterable[tuple[str, str]]) -> dict[str, PeriodKind]:
    """(schedule key, period) pairs of the configured schedules → the cadences to check.

    A default schedule removed from the config is not checked; day/week periods count per month.
    """
    out: dict[str, PeriodKind] = {}
    for key, period in schedules:
        if key in DEFAULT_CADENCES:
            out[key] = period if period in ("month", "quarter", "year") else "month"  # type: ignore[assignment]
    return out


def _month_key(label: str | None) -> tuple[int, int] | None:
    m = re.match(r"^(\d{4})-(\d{2})", label or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)


def _day_text(iso: str | None) -> str:
    try:
        day = dt.date.fromisoformat(str(iso))
    except ValueError:
        return ""
    return f"{day.month}月{day.day}日"


def _month_list(months: Sequence[ReportPeriod]) -> str:
    return "、".join(f"{p.first.month}月" if p.kind == "month" else p.title for p in months)


@dataclass(frozen=True, slots=True)
class _MeetingCount:
    org_id: int
    meeting_type: str | None
    schedule_key: str
    group_id: int | None
    month: tuple[int, int]
    count: int
    first_day: str


async def _meeting_counts(session: AsyncSession, ids: Sequence[int], first: dt.date, last: dt.date) -> list[_MeetingCount]:
    meeting_type = Response.values["meeting_type"].as_string()
    day = Response.values["date"].as_string()
    month = func.substr(day, 1, 7)
    stmt = (
        select(Campaign.org_id, meeting_type, Campaign.schedule_key, Member.group_id, month, func.count(), func.min(day))
        .select_from(Response)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .join(Member, Member.id == Response.member_id)
        .where(
            Campaign.org_id.in_(list(ids)),
            Campaign.form_key == MEETING_FORM,
            day >= first.isoformat(),
            day <= last.isoformat(),
        )
        .group_by(Campaign.org_id, meeting_type, Campaign.schedule_key, Member.group_id, month)
    )
    out = []
    for oid, mt, skey, gid, label, n, first_day in (await session.execute(stmt)).tuples():
        key = _month_key(label)
        if key is not None:
            out.append(_MeetingCount(oid, mt, skey, gid, key, int(n), str(first_day)))
    return out


def _matches(row: _MeetingCount, rule: MeetingRule) -> bool:
    return row.meeting_type == rule.key or (not row.meeting_type and row.schedule_key == rule.schedule_key)


def _in(row: _MeetingCount, p: ReportPeriod) -> bool:
    return p.first <= dt.date(row.month[0], row.month[1], 1) <= p.last


def _held_detail(label_rows: list[_MeetingCount], p: ReportPeriod) -> str:
    days = sorted(r.first_day for r in label_rows if _in(r, p))
    return _day_text(days[0]) if days else ""


def _meeting_item(
    rule: MeetingRule,
    cadence: PeriodKind,
    rows: list[_MeetingCount],
    period: ReportPeriod,
    today: dt.date,
    groups: list[Org],
) -> ComplianceItem | None:
    label = f"{rule.label}（{CADENCE_ZH[cadence]}）"
    due = sub_periods(period, cadence, until=today)
    if not due:
        return None
    mine = [r for r in rows if _matches(r, rule)]
    ongoing = due[-1].last >= today
    if rule.key == "group":
        if not groups:
            return None
        lacking: list[str] = []
        all_missed: list[ReportPeriod] = []
        for group in groups:
            held_by = [r for r in mine if r.group_id == group.id]
            missed_by = [p for p in due if not any(_in(r, p) for r in held_by)]
            if missed_by:
                lacking.append(f"{group.name}缺{_month_list(missed_by)}")
                all_missed += missed_by
        if not lacking:
            return ComplianceItem(rule.key, label, True, f"{len(groups)}个党小组均已召开并登记")
        pending = ongoing and all(p == due[-1] for p in all_missed)
        tail = "（本期尚未结束，期末前召开并登记即可）" if pending else ""
        return ComplianceItem(rule.key, label, False, "；".join(lacking) + tail, pending=pending)
    held = [p for p in due if any(_in(r, p) for r in mine)]
    missed = [p for p in due if p not in held]
    if not missed:
        when = _held_detail(mine, due[-1])
        if len(due) == 1:
            return ComplianceItem(rule.key, label, True, f"{_month_list(due)}已召开并登记" + (f"（{when}）" if when else ""))
        return ComplianceItem(rule.key, label, True, f"已召开 {len(held)}/{len(due)}，均已登记")
    pending = ongoing and missed == [due[-1]]
    tail = "（本期尚未结束，期末前召开并登记即可）" if pending else ""
    if len(due) == 1:
        return ComplianceItem(rule.key, label, False, f"{_month_list(due)}尚未登记会议记录{tail}", pending=pending)
    return ComplianceItem(
        rule.key, label, False, f"已召开 {len(held)}/{len(due)}，缺{_month_list(missed)}{tail}", pending=pending
    )


async def _theme_days(
    session: AsyncSession, ids: Sequence[int], period: ReportPeriod, form_key: str = THEME_DAY_FORM
) -> dict[tuple[int, tuple[int, int]], tuple[int, int]]:
    """(org, (year, month)) → (responses, attended) for theme-day collections starting in the period."""
    status = Response.values[("attendance", "status")].as_string()
    month = func.substr(Campaign.period, 1, 7)
    stmt = (
        select(
            Campaign.org_id, month, func.count(Response.id),
            func.sum(case((status.in_(("present", "online")), 1), else_=0)),
        )  # fmt: skip
        .select_from(Campaign)
        .outerjoin(Response, Response.campaign_id == Campaign.id)
        .where(Campaign.org_id.in_(list(ids)), Campaign.form_key == form_key, period_filter(period))
        .group_by(Campaign.org_id, month)
    )
    out: dict[tuple[int, tuple[int, int]], tuple[int, int]] = {}
    for oid, label, n, attended in (await session.execute(stmt)).tuples():
        key = _month_key(label)
        if key is not None:
            old = out.get((oid, key), (0, 0))
            out[(oid, key)] = (old[0] + int(n or 0), old[1] + int(attended or 0))
    return out


def _theme_item(
    org: Org, cadence: PeriodKind, counts: Mapping[tuple[int, tuple[int, int]], tuple[int, int]],
    period: ReportPeriod, today: dt.date,
) -> ComplianceItem | None:  # fmt: skip
    label = f"主题党日（{CADENCE_ZH[cadence]}）"
    due = sub_periods(period, "month", until=today)
    if not due:
        return None
    held = {p.label: counts.get((org.id, (p.year, p.first.month)), (0, 0)) for p in due}
    missed = [p for p in due if held[p.label][1] == 0]
    if not missed:
        if len(due) == 1:
            return ComplianceItem("theme_day", label, True, f"{_month_list(due)}已开展，签到参加{held[due[0].label][1]}人")
        return ComplianceItem("theme_day", label, True, f"已开展 {len(due)}/{len(due)} 个月")
    pending = due[-1].last >= today and missed == [due[-1]]
    tail = "（本月尚未结束）" if pending else ""
    if len(due) == 1:
        return ComplianceItem("theme_day", label, False, f"{_month_list(due)}尚未开展或无人签到{tail}", pending=pending)
    return ComplianceItem(
        "theme_day", label, False, f"已开展 {len(due) - len(missed)}/{len(due)}，缺{_month_list(missed)}{tail}",
        pending=pending,
    )  # fmt: skip


async def arrears_streaks(
    session: AsyncSession, org_ids: Sequence[int], until: dt.date, months_back: int = 12, form_key: str = DUES_FORM
) -> dict[int, list[tuple[Member, int]]]:
    """org → [(member, consecutive unpaid months up to ``until``'s month)], over the last ``months_back``
    collected months (collections that ran; months without one do not count either way)."""
    end = (until.year, until.month)
    start_index = until.year * 12 + until.month - 1 - (months_back - 1)
    start = (start_index // 12, start_index % 12 + 1)
    month = func.substr(Campaign.period, 1, 7)
    window = and_(
        Campaign.org_id.in_(list(org_ids)),
        Campaign.form_key == form_key,
        month >= f"{start[0]}-{start[1]:02d}",
        month <= f"{end[0]}-{end[1]:02d}",
    )
    collected: dict[int, set[tuple[int, int]]] = {oid: set() for oid in org_ids}
    for oid, label in (await session.execute(select(Campaign.org_id, month).where(window).distinct())).tuples():
        key = _month_key(label)
        if key is not None and start <= key <= end:
            collected[oid].add(key)
    paid: dict[int, set[tuple[int, int]]] = {}
    pairs = (
        select(Response.member_id, month)
        .select_from(Response)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .where(window)
        .group_by(Response.member_id, month)
    )
    for mid, label in (await session.execute(pairs)).tuples():
        key = _month_key(label)
        if key is not None:
            paid.setdefault(mid, set()).add(key)
    stmt = select(Member).where(Member.org_id.in_(list(org_ids)), Member.active.is_(True)).order_by(Member.id)
    out: dict[int, list[tuple[Member, int]]] = {oid: [] for oid in org_ids}
    for member in (await session.execute(stmt)).scalars().all():
        joined = member.created_at.date()
        months = [k for k in sorted(collected.get(member.org_id, set())) if _month_end(*k) >= joined]
        mine = paid.get(member.id, set())
        streak = 0
        for key in reversed(months):
            if key in mine:
                break
            streak += 1
        if streak:
            out.setdefault(member.org_id, []).append((member, streak))
    return out


@dataclass(frozen=True, slots=True)
class IncompleteRecord:
    org_id: int
    day: str
    meeting_type: str
    missing: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{_day_text(self.day)}{TYPE_LABELS.get(self.meeting_type, '会议')}缺{'、'.join(self.missing)}"


async def incomplete_records(
    session: AsyncSession, org_ids: Sequence[int], first: dt.date, last: dt.date
) -> tuple[dict[int, int], list[IncompleteRecord]]:
    """(org → number of meeting records in the period, the records missing §2.3 fields)."""
    day = Response.values["date"].as_string()
    where = and_(
        Campaign.org_id.in_(list(org_ids)),
        Campaign.form_key == MEETING_FORM,
        day >= first.isoformat(),
        day <= last.isoformat(),
    )
    count_stmt = (
        select(Campaign.org_id, func.count(Response.id))
        .select_from(Response)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .where(where)
        .group_by(Campaign.org_id)
    )
    counts = {oid: int(n) for oid, n in (await session.execute(count_stmt)).tuples()}
    sizes_stmt = (
        select(Member.org_id, func.count(Member.id))
        .where(Member.org_id.in_(list(org_ids)), Member.active.is_(True))
        .group_by(Member.org_id)
    )
    sizes = {oid: int(n) for oid, n in (await session.execute(sizes_stmt)).tuples()}
    rows_stmt = (
        select(Campaign.org_id, Response.values)
        .select_from(Response)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .where(where)
        .order_by(day, Response.id)
    )
    out = []
    for oid, values in (await session.execute(rows_stmt)).tuples():
        missing = _missing_fields(values, sizes.get(oid, 0))
        if missing:
            out.append(IncompleteRecord(oid, str(values.get("date") or ""), str(values.get("meeting_type") or ""), missing))
    return counts, out


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or (isinstance(value, str) and value.strip() in ("", "无"))


def _missing_fields(values: Mapping[str, Any], branch_size: int) -> tuple[str, ...]:
    missing = [label for key, label in REQUIRED_FIELDS.items() if _empty(values.get(key))]
    meeting_type = values.get("meeting_type")
    attendees = values.get("attendees")
    count = len(attendees) if isinstance(attendees, list) else 0
    if meeting_type in FULL_ATTENDANCE_TYPES and 0 < count < branch_size and _empty(values.get("absentees")):
        missing.append("缺席人员及原因")
    if meeting_type in RESOLUTION_TYPES and _empty(values.get("resolutions")):
        missing.append("会议决议")
    return tuple(missing)


async def branch_compliance(
    session: AsyncSession,
    branches: Sequence[Org],
    period: ReportPeriod,
    today: dt.date,
    cadences: Mapping[str, PeriodKind] | None = None,
) -> list[BranchCompliance]:
    """Every item per branch for ``period`` (sub-periods not yet started by ``today`` are not due)."""
    cadences = DEFAULT_CADENCES if cadences is None else cadences
    ids = [b.id for b in branches]
    if not ids:
        return []
    quarter_span = sub_periods(period, "quarter")
    widest = (
        ReportPeriod("year", str(period.year), dt.date(period.year, 1, 1), dt.date(period.year, 12, 31))
        if any(c == "year" for c in cadences.values())
        else ReportPeriod("quarter", period.label, quarter_span[0].first, quarter_span[-1].last)
    )
    meetings = await _meeting_counts(session, ids, widest.first, widest.last)
    theme = await _theme_days(session, ids, period) if "theme_day" in cadences else {}
    dues = {d.org.id: d for d in await dues_data(session, branches, period)}
    end = min(period.last, today)
    streaks = await arrears_streaks(session, ids, end)
    record_counts, incomplete = await incomplete_records(session, ids, period.first, period.last)
    groups_stmt = select(Org).where(Org.kind == "group", Org.parent_id.in_(ids)).order_by(Org.path)
    groups: dict[int, list[Org]] = {}
    for group in (await session.execute(groups_stmt)).scalars().all():
        if group.parent_id is not None:
            groups.setdefault(group.parent_id, []).append(group)
    out = []
    for branch in branches:
        items: list[ComplianceItem] = []
        mine = [r for r in meetings if r.org_id == branch.id]
        for rule in MEETING_RULES:
            cadence = cadences.get(rule.schedule_key)
            if cadence is None:
                continue
            item = _meeting_item(rule, cadence, mine, period, today, groups.get(branch.id, []))
            if item is not None:
                items.append(item)
        if "theme_day" in cadences:
            item = _theme_item(branch, cadences["theme_day"], theme, period, today)
            if item is not None:
                items.append(item)
        items.append(_dues_item(dues.get(branch.id), period))
        items.append(_arrears_item(streaks.get(branch.id, [])))
        items.append(_records_item(record_counts.get(branch.id, 0), [r for r in incomplete if r.org_id == branch.id]))
        out.append(BranchCompliance(branch, period, items))
    return out


def _dues_item(data: DuesBranch | None, period: ReportPeriod) -> ComplianceItem:
    label = "党费收缴"
    if data is None or not data.months_collected:
        return ComplianceItem("dues", label, False, f"{period.title}未开展党费收缴")
    months = "、".join(f"{m}月" for m in data.months_collected)
    detail = f"{months}已交 {data.payments}/{data.expected_payments} 人次（{data.rate:.0%}）"
    unpaid = [r.member.name for r in data.rows if r.unpaid_months]
    return ComplianceItem("dues", label, data.payments >= data.expected_payments, detail, people=unpaid)


def _arrears_item(streaks: list[tuple[Member, int]]) -> ComplianceItem:
    label = f"连续欠交党费（{ARREARS_STREAK_WARN}个月及以上）"
    long = sorted([(m, n) for m, n in streaks if n >= ARREARS_STREAK_WARN], key=lambda p: (-p[1], p[0].id))
    if not long:
        return ComplianceItem("arrears", label, True, f"无连续{ARREARS_STREAK_WARN}个月及以上未交党费的党员")
    worst = long[0][1]
    tail = "，已达5个月，请支部书记及时谈心提醒（连续6个月不交按规定处理）" if worst >= 5 else "，请支部及时提醒"
    people = [f"{m.name}（{n}个月）" for m, n in long]
    return ComplianceItem("arrears", label, False, f"{len(long)}人连续未交{tail}", people=people)


def _records_item(count: int, incomplete: list[IncompleteRecord]) -> ComplianceItem:
    label = "会议记录完整"
    if not count:
        return ComplianceItem("records", label, True, "本期暂无会议记录")
    if not incomplete:
        return ComplianceItem("records", label, True, f"本期{count}条会议记录，要素齐全")
    return ComplianceItem(
        "records", label, False, f"{len(incomplete)}/{count}条记录缺项：" + "；".join(r.text for r in incomplete[:5])
    )


def month_of(day: dt.date) -> ReportPeriod:
    return month_period(day.year, day.month)
