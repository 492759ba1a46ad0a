"""Campaign figures: answered / total / missing, money totals, branch ranking; counted in SQL.

Every function takes an ``AsyncSession`` and plain values (no chat context), so the web dashboard can
call them as they are. Totals come from ``GROUP BY`` / ``COUNT`` / ``SUM``; only name lists (who is
missing) load member rows, and only for one campaign at a time.

The audience of a campaign is the active members of its organisation, narrowed by the campaign's
``audience`` roles/categories. Members on leave on ``day`` who have not answered are left out of
the total (and listed separately), as the reminders do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.db.campaigns import audience_admits
from bot.db.tables import Campaign, Member, Org, Response
from bot.reports.periods import ReportPeriod


@dataclass(frozen=True, slots=True)
class CampaignCounts:
    campaign_id: int
    total: int = 0  # audience size, members on leave (without an answer) excluded
    answered: int = 0
    amount_fen: int = 0
    late: int = 0
    flagged: int = 0
    on_leave: int = 0

    @property
    def rate(self) -> float:
        return self.answered / self.total if self.total else 1.0


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    campaign: Campaign
    org_name: str
    total: int
    answered: int
    amount_fen: int
    late: int
    flagged: int
    missing: list[str] = field(default_factory=list)
    on_leave: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.answered / self.total if self.total else 1.0


# ---- filters ----------------------------------------------------------------------------------------


def audience_filter(audience: dict[str, Any]) -> ColumnElement[bool]:
    """SQL condition on ``Member`` for a campaign's ``audience`` (roles packed as ",书记,", categories)."""
    roles = list(audience.get("roles") or [])
    categories = list(audience.get("categories") or [])
    conditions: list[ColumnElement[bool]] = [Member.active.is_(True)]
    if roles:
        conditions.append(or_(*[Member.roles.like(f"%,{r},%") for r in roles]))
    if categories:
        conditions.append(Member.category.in_(categories))
    return and_(*conditions)


def not_on_leave(day: dt.date) -> ColumnElement[bool]:
    return or_(Member.leave_until.is_(None), Member.leave_until < day)


def period_filter(period: ReportPeriod) -> ColumnElement[bool]:
    """Campaign labels starting inside ``period`` (``2026-11`` and ad-hoc ``2026-11-27`` for November)."""
    if period.kind == "month":
        return or_(Campaign.period == period.label, Campaign.period.like(f"{period.label}-%"))
    if period.kind == "quarter":
        months = [Campaign.period.like(f"{period.year}-{m:02d}%") for m in period.months]
        return or_(Campaign.period == period.label, *months)
    return or_(Campaign.period == period.label, Campaign.period.like(f"{period.label}-%"))


def _audience_key(campaign: Campaign) -> tuple[tuple[str, ...], tuple[str, ...]]:
    audience = campaign.audience or {}
    return tuple(audience.get("roles") or ()), tuple(audience.get("categories") or ())


class _AudienceListLength(FunctionElement[int]):
    """Length of ``campaigns.audience[key]`` when it is a JSON array, else 0 (missing, null, a scalar)."""

    type = Integer()
    inherit_cache = True

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__()


@compiles(_AudienceListLength, "postgresql")
def _audience_length_pg(element: _AudienceListLength, compiler: SQLCompiler, **kw: Any) -> str:
    item = f"campaigns.audience -> '{element.key}'"
    return f"COALESCE(CASE WHEN json_typeof({item}) = 'array' THEN json_array_length({item}) END, 0)"


@compiles(_AudienceListLength)
def _audience_length_sqlite(element: _AudienceListLength, compiler: SQLCompiler, **kw: Any) -> str:
    return f"COALESCE(json_array_length(campaigns.audience, '$.{element.key}'), 0)"


def whole_branch() -> ColumnElement[bool]:
    """SQL: the campaign asks everyone (its audience names no roles and no categories)."""
    return and_(_AudienceListLength("roles") == 0, _AudienceListLength("categories") == 0)


# ---- queries ----------------------------------------------------------------------------------------


async def campaign_counts(
    session: AsyncSession, campaigns: Sequence[Campaign], day: dt.date
) -> dict[int, CampaignCounts]:
    """campaign id → counts, one ``GROUP BY`` query per distinct audience (usually one)."""
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Campaign]] = {}
    for campaign in campaigns:
        groups.setdefault(_audience_key(campaign), []).append(campaign)
    out: dict[int, CampaignCounts] = {c.id: CampaignCounts(c.id) for c in campaigns}
    for (roles, categories), members in groups.items():
        answered = Response.id.is_not(None)
        stmt = (
            select(
                Campaign.id,
                func.sum(case((or_(answered, not_on_leave(day)), 1), else_=0)),
                func.count(Response.id),
                func.coalesce(func.sum(Response.amount_fen), 0),
                func.sum(case((Response.late.is_(True), 1), else_=0)),
                func.sum(case((Response.flagged.is_(True), 1), else_=0)),
                func.sum(case((and_(Response.id.is_(None), ~not_on_leave(day)), 1), else_=0)),
            )
            .select_from(Campaign)
            .join(Member, Member.org_id == Campaign.org_id)
            .outerjoin(Response, and_(Response.campaign_id == Campaign.id, Response.member_id == Member.id))
            .where(
                Campaign.id.in_([c.id for c in members]),
                audience_filter({"roles": list(roles), "categories": list(categories)}),
            )
            .group_by(Campaign.id)
        )
        for cid, total, n, amount, late, flagged, leave in (await session.execute(stmt)).all():
            out[cid] = CampaignCounts(
                cid, int(total or 0), int(n or 0), int(amount or 0), int(late or 0), int(flagged or 0), int(leave or 0)
            )
    return out


@dataclass(frozen=True, slots=True)
class BranchRoll:
    counts: CampaignCounts
    missing: list[str]  # names, by member id
    on_leave: list[str]  # without an answer and on leave on the day


async def branch_roll(session: AsyncSession, campaign: Campaign, day: dt.date) -> BranchRoll:
    """One campaign's figures and the names behind them, from one query over its audience.

    For one branch's roll (``未交``): the names are the answer, so the audience's rows (one branch,
    tens of members) are read once and counted here, instead of a counting query and a names query."""
    on_leave = and_(Member.leave_until.is_not(None), Member.leave_until >= day)
    stmt = (
        select(Member.name, on_leave, Response.id, Response.amount_fen, Response.late, Response.flagged)
        .outerjoin(Response, (Response.campaign_id == campaign.id) & (Response.member_id == Member.id))
        .where(Member.org_id == campaign.org_id, audience_filter(campaign.audience or {}))
        .order_by(Member.id)
    )
    return tally(campaign.id, (await session.execute(stmt)).tuples())


def tally(campaign_id: int, rows: Iterable[tuple[str, bool, int | None, int | None, bool, bool]]) -> BranchRoll:
    """Count an audience's rows (name, on leave, answer id, amount, late, flagged), in member order."""
    total = answered = amount = late = flagged = 0
    missing: list[str] = []
    leave: list[str] = []
    for name, away, response_id, amount_fen, was_late, was_flagged in rows:
        if response_id is None:
            (leave if away else missing).append(name)
            total += not away
            continue
        total += 1
        answered += 1
        amount += amount_fen or 0
        late += bool(was_late)
        flagged += bool(was_flagged)
    counts = CampaignCounts(campaign_id, total, answered, amount, late, flagged, len(leave))
    return BranchRoll(counts, missing, leave)


@cache
def _current_roll_statement() -> Select[Any]:
    """Built once with bind parameters: the everyday command should not pay for building it each time."""
    org_id = bindparam("org_id", type_=Campaign.org_id.type)
    now = bindparam("now", type_=Campaign.opened_at.type)
    open_now = (
        select(Campaign.form_key)
        .where(Campaign.org_id == org_id, Campaign.opened_at <= now, Campaign.deadline_at >= now, whole_branch())
        .order_by(Campaign.opened_at.desc(), Campaign.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    form = func.coalesce(open_now, bindparam("default_form", type_=Campaign.form_key.type))
    newest = (
        select(Campaign.id)
        .where(Campaign.org_id == org_id, Campaign.opened_at <= now, Campaign.form_key == form)
        .order_by(Campaign.opened_at.desc(), Campaign.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    on_leave = and_(Member.leave_until.is_not(None), Member.leave_until >= bindparam("day", type_=Member.leave_until.type))
    return (
        select(Campaign, Member.id, Member.name, Member.roles, Member.category, on_leave,
               Response.id, Response.amount_fen, Response.late, Response.flagged)
        .outerjoin(Member, (Member.org_id == Campaign.org_id) & Member.active.is_(True))
        .outerjoin(Response, (Response.campaign_id == Campaign.id) & (Response.member_id == Member.id))
        .where(Campaign.id == newest)
        .order_by(Member.id)
    )  # fmt: skip


async def current_roll(
    session: AsyncSession, org_id: int, now: dt.datetime, day: dt.date, default_form: str
) -> tuple[Campaign, BranchRoll] | None:
    """A branch's everyday ``未交``: which collection, and who has not answered it, in one query.

    The collection is the newest one of the form being collected now (the newest whole-branch campaign
    whose deadline is ahead, as ``current_form``), else of ``default_form``; ``None`` if there is none.
    The campaign's audience narrows the members here, in Python (tens of rows)."""
    params = {"org_id": org_id, "now": now, "day": day, "default_form": default_form}
    rows = (await session.execute(_current_roll_statement(), params)).tuples().all()
    if not rows:
        return None
    campaign = rows[0][0]
    audience = [
        (name, away, response_id, amount_fen, was_late, was_flagged)
        for _, member_id, name, roles, category, away, response_id, amount_fen, was_late, was_flagged in rows
        if member_id is not None and audience_admits(campaign.audience, roles, category)
    ]
    return campaign, tally(campaign.id, audience)


async def campaign_summary(session: AsyncSession, campaign: Campaign, day: dt.date) -> CampaignSummary:
    """One campaign with its figures and the names of who is missing / on leave."""
    return (await campaign_summaries(session, [campaign], day, with_names=True))[0]


async def campaign_summaries(
    session: AsyncSession,
    campaigns: Sequence[Campaign],
    day: dt.date,
    *,
    with_names: bool = False,
    org_names: Mapping[int, str] | None = None,
) -> list[CampaignSummary]:
    """Figures for many campaigns (e.g. one per branch), best rate first; member names only when asked.

    ``org_names``: the branches' names when the caller has them already (saves a query)."""
    if with_names:  # one branch's roll: the names and the counts from one query each campaign
        rolls = {c.id: await branch_roll(session, c, day) for c in campaigns}
        counts = {i: r.counts for i, r in rolls.items()}
    else:
        rolls, counts = {}, await campaign_counts(session, campaigns, day)
    org_ids = sorted({c.org_id for c in campaigns})
    names: dict[int, str] = dict(org_names or {})
    unnamed = [i for i in org_ids if i not in names]
    if unnamed:
        rows = await session.execute(select(Org.id, Org.name).where(Org.id.in_(unnamed)))
        names.update(rows.tuples().all())
    out = []
    for campaign in campaigns:
        c = counts[campaign.id]
        missing: list[str] = []
        leave: list[str] = []
        if with_names:
            missing, leave = rolls[campaign.id].missing, rolls[campaign.id].on_leave
        out.append(
            CampaignSummary(
                campaign, names.get(campaign.org_id, ""), c.total, c.answered, c.amount_fen, c.late, c.flagged,
                missing, leave,
            )  # fmt: skip
        )
    out.sort(key=lambda s: (-s.rate, -s.answered, s.org_name))
    return out


async def latest_campaigns(
    session: AsyncSession,
    org_ids: Sequence[int],
    form_key: str,
    now: dt.datetime,
    period: ReportPeriod | str | None = None,
) -> list[Campaign]:
    """Per org, the newest opened campaign of the form (within ``period`` when given).

    Picked in SQL (``ROW_NUMBER() OVER (PARTITION BY org_id …)``), so only one campaign per org is loaded:
    a year of monthly campaigns for 800 branches is 9,600 rows, of which the report needs 800.
    """
    if not org_ids:
        return []
    conditions = [Campaign.org_id.in_(list(org_ids)), Campaign.form_key == form_key, Campaign.opened_at <= now]
    if isinstance(period, ReportPeriod):
        conditions.append(period_filter(period))
    elif period:
        conditions.append(Campaign.period == period)
    rank = func.row_number().over(
        partition_by=Campaign.org_id, order_by=(Campaign.opened_at.desc(), Campaign.id.desc())
    )
    ranked = select(Campaign.id.label("id"), rank.label("rank")).where(*conditions).subquery()
    stmt = (
        select(Campaign)
        .join(ranked, ranked.c.id == Campaign.id)
        .where(ranked.c.rank == 1)
        .order_by(Campaign.opened_at, Campaign.id)
    )
    return list((await session.execute(stmt)).scalars().all())


RECENT_LIMIT = 50


async def recent_campaigns(session: AsyncSession, org_id: int, now: dt.datetime) -> list[Campaign]:
    """One branch's newest opened campaigns (at most ``RECENT_LIMIT``), newest first."""
    stmt = (
        select(Campaign)
        .where(Campaign.org_id == org_id, Campaign.opened_at <= now)
        .order_by(Campaign.opened_at.desc(), Campaign.id.desc())
        .limit(RECENT_LIMIT)
    )
    return list((await session.execute(stmt)).scalars().all())


def current_form_of(campaigns: Sequence[Campaign], now: dt.datetime) -> str | None:
    """``current_form`` over campaigns already loaded newest first."""
    for campaign in campaigns:
        if campaign.deadline_at >= now and _audience_key(campaign) == ((), ()):
            return campaign.form_key
    return None


async def current_form(session: AsyncSession, org_ids: Sequence[int], now: dt.datetime) -> str | None:
    """The form of the newest whole-branch campaign still open (deadline ahead), if any.

    Role-targeted tasks (meeting records, liaison logs) are skipped: "who has not answered" usually
    means the collection the whole branch was asked for.
    """
    if not org_ids:
        return None
    stmt = (
        select(Campaign)
        .where(Campaign.org_id.in_(list(org_ids)), Campaign.opened_at <= now, Campaign.deadline_at >= now)
        .order_by(Campaign.opened_at.desc(), Campaign.id.desc())
        .limit(50)
    )
    return current_form_of((await session.execute(stmt)).scalars().all(), now)


async def answered_counts(session: AsyncSession, campaign_ids: list[int]) -> dict[int, tuple[int, int]]:
    """campaign id → (answers, amount in fen), one GROUP BY query."""
    if not campaign_ids:
        return {}
    stmt = (
        select(Response.campaign_id, func.count(Response.id), func.coalesce(func.sum(Response.amount_fen), 0))
        .where(Response.campaign_id.in_(campaign_ids))
        .group_by(Response.campaign_id)
    )
    return {cid: (int(n), int(total)) for cid, n, total in (await session.execute(stmt)).all()}
