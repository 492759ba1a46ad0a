"""Dashboard figures that bot.reports does not offer: head counts, the 12-month trend, money per branch,
a branch's recent campaigns and one campaign's answers. Figures are aggregated in SQL (GROUP BY / COUNT /
SUM), campaign counts by :func:`bot.reports.stats.campaign_counts`; only the answers shown on a campaign
page are loaded row by row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.db.tables import Campaign, Member, Response
from bot.reports.periods import ReportPeriod, month_period
from bot.reports.stats import CampaignCounts, campaign_counts, period_filter


@dataclass(frozen=True, slots=True)
class Headcount:
    members: int = 0  # active members
    on_leave: int = 0  # of them on leave on the day asked


async def headcounts(session: AsyncSession, day: dt.date) -> dict[int, Headcount]:
    """org id → active members and how many are on leave, one GROUP BY."""
    leave = case((and_(Member.leave_until.is_not(None), Member.leave_until >= day), 1), else_=0)
    stmt = (
        select(Member.org_id, func.count(Member.id), func.sum(leave))
        .where(Member.active.is_(True))
        .group_by(Member.org_id)
    )
    return {org_id: Headcount(int(n), int(lv or 0)) for org_id, n, lv in (await session.execute(stmt)).all()}


def last_months(today: dt.date, count: int = 12) -> list[ReportPeriod]:
    """The ``count`` calendar months ending with the month of ``today``, oldest first."""
    index = today.year * 12 + today.month - 1
    return [month_period(i // 12, i % 12 + 1) for i in range(index - count + 1, index + 1)]


async def campaigns_for_periods(
    session: AsyncSession, form_key: str, labels: Sequence[str], org_ids: Sequence[int]
) -> list[Campaign]:
    if not labels or not org_ids:
        return []
    stmt = select(Campaign).where(
        Campaign.form_key == form_key, Campaign.period.in_(list(labels)), Campaign.org_id.in_(list(org_ids))
    )
    return list((await session.execute(stmt.order_by(Campaign.period, Campaign.org_id))).scalars().all())


@dataclass(frozen=True, slots=True)
class MonthFigures:
    period: ReportPeriod
    answered: int = 0
    total: int = 0
    amount_fen: int = 0
    campaigns: int = 0

    @property
    def rate(self) -> float | None:
        return self.answered / self.total if self.total else None


async def monthly_trend(
    session: AsyncSession, form_key: str, org_ids: Sequence[int], today: dt.date, months: int = 12
) -> list[MonthFigures]:
    """Per month (oldest first): answers, audience and money of the form's monthly campaigns in ``org_ids``."""
    periods = last_months(today, months)
    campaigns = await campaigns_for_periods(session, form_key, [p.label for p in periods], org_ids)
    counts = await campaign_counts(session, campaigns, today)
    sums: dict[str, list[int]] = {p.label: [0, 0, 0, 0] for p in periods}
    for campaign in campaigns:
        c = counts[campaign.id]
        row = sums[campaign.period]
        row[0] += c.answered
        row[1] += c.total
        row[2] += c.amount_fen
        row[3] += 1
    return [MonthFigures(p, *sums[p.label]) for p in periods]


async def money_by_org(session: AsyncSession, form_key: str, period: ReportPeriod, day: dt.date) -> dict[int, int]:
    """org id → money collected by the form's campaigns in ``period`` (fen), over each campaign's audience."""
    stmt = select(Campaign).where(Campaign.form_key == form_key, period_filter(period))
    campaigns = list((await session.execute(stmt)).scalars().all())
    counts = await campaign_counts(session, campaigns, day)
    totals: dict[int, int] = {}
    for campaign in campaigns:
        totals[campaign.org_id] = totals.get(campaign.org_id, 0) + counts[campaign.id].amount_fen
    return totals


async def recent_campaigns(
    session: AsyncSession, org_id: int, now: dt.datetime, day: dt.date, limit: int = 60
) -> list[tuple[Campaign, CampaignCounts]]:
    """The branch's newest opened campaigns with their counts."""
    stmt = (
        select(Campaign)
        .where(Campaign.org_id == org_id, Campaign.opened_at <= now)
        .order_by(Campaign.opened_at.desc(), Campaign.id.desc())
        .limit(limit)
    )
    campaigns = list((await session.execute(stmt)).scalars().all())
    counts = await campaign_counts(session, campaigns, day)
    return [(c, counts[c.id]) for c in campaigns]


@dataclass(frozen=True, slots=True)
class Answer:
    name: str
    values: dict[str, Any]
    amount_fen: int | None
    late: bool
    flagged: bool
    flag_note: str
    updated_at: dt.datetime
    entered_by: str  # the proxy's name when someone else entered it, else ""
    platform: str


async def campaign_answers(session: AsyncSession, campaign_id: int) -> list[Answer]:
    """Every answer to one campaign, with who gave it and who typed it, by member id."""
    entered = aliased(Member)
    stmt = (
        select(Response, Member.name, entered.name)
        .join(Member, Member.id == Response.member_id)
        .outerjoin(entered, entered.id == Response.entered_by)
        .where(Response.campaign_id == campaign_id)
        .order_by(Member.id)
    )
    out = []
    for r, name, entered_name in (await session.execute(stmt)).all():
        proxy = entered_name if r.entered_by != r.member_id and entered_name else ""
        out.append(Answer(name, r.values, r.amount_fen, r.late, r.flagged, r.flag_note, r.updated_at, proxy, r.platform))
    return out
