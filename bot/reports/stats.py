"""Campaign summaries: answered / total / missing, money totals; aggregation happens in SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.members import on_leave
from bot.db.tables import Campaign, Member, Org, Response


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    campaign: Campaign
    org_name: str
    total: int  # audience size, members on leave excluded
    answered: int
    amount_fen: int
    late: int
    flagged: int
    missing: list[str]
    on_leave: list[str]

    @property
    def rate(self) -> float:
        return self.answered / self.total if self.total else 1.0


async def campaign_summary(session: AsyncSession, campaign: Campaign, day: dt.date) -> CampaignSummary:
    org = await session.get(Org, campaign.org_id)
    roles = campaign.audience.get("roles") or []
    categories = campaign.audience.get("categories") or []
    stmt = (
        select(Member, Response.id, Response.amount_fen, Response.late, Response.flagged)
        .outerjoin(Response, and_(Response.member_id == Member.id, Response.campaign_id == campaign.id))
        .where(Member.org_id == campaign.org_id, Member.active.is_(True))
        .order_by(Member.id)
    )
    if categories:
        stmt = stmt.where(Member.category.in_(categories))
    total = answered = amount = late = flagged = 0
    missing: list[str] = []
    leave: list[str] = []
    for member, response_id, amount_fen, is_late, is_flagged in (await session.execute(stmt)).all():
        if roles and not any(r in member.role_list for r in roles):
            continue
        if response_id is None:
            if on_leave(member, day):
                leave.append(member.name)
                continue
            missing.append(member.name)
        else:
            answered += 1
            amount += amount_fen or 0
            late += int(bool(is_late))
            flagged += int(bool(is_flagged))
        total += 1
    return CampaignSummary(campaign, org.name if org else "", total, answered, amount, late, flagged, missing, leave)


async def latest_campaigns(
    session: AsyncSession, org_ids: list[int], form_key: str, now: dt.datetime, period: str = ""
) -> list[Campaign]:
    """Per org, the newest opened campaign of the form (or the one of ``period``)."""
    stmt = select(Campaign).where(Campaign.org_id.in_(org_ids), Campaign.form_key == form_key, Campaign.opened_at <= now)
    if period:
        stmt = stmt.where(Campaign.period == period)
    newest: dict[int, Campaign] = {}
    for campaign in (await session.execute(stmt.order_by(Campaign.opened_at, Campaign.id))).scalars().all():
        newest[campaign.org_id] = campaign
    return list(newest.values())


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
