"""Who a scheduled campaign asks, and who has not answered yet (pure filters over loaded rows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import orgs as org_repo
from bot.db.members import members_of, on_leave
from bot.db.tables import Campaign, Member, NudgeLog, Org, Response
from schedules.models import ScheduleSpec


async def target_orgs(session: AsyncSession, spec: ScheduleSpec) -> list[Org]:
    """The organisations that each get one campaign of this schedule."""
    scope = await org_repo.find_org(session, spec.audience.scope) if spec.audience.scope else None
    if spec.audience.scope and scope is None:
        return []
    if spec.audience.per == "committee" and scope is not None:
        return [scope]
    return await org_repo.branches(session, scope)


async def _audience_orgs(session: AsyncSession, campaign: Campaign) -> list[int]:
    org = await org_repo.get_org(session, campaign.org_id)
    return await org_repo.subtree_ids(session, org) if org.kind != "branch" else [org.id]


async def audience_of(session: AsyncSession, campaign: Campaign) -> list[Member]:
    roles = campaign.audience.get("roles") or []
    categories = campaign.audience.get("categories") or []
    return await members_of(session, await _audience_orgs(session, campaign), roles=roles, categories=categories)


async def missing_members(session: AsyncSession, campaign: Campaign, day: dt.date) -> list[Member]:
    """Audience members with no answer, leaving out those on leave that day (the answers are left out
    in SQL, so a reminder reads only the members it will nudge)."""
    roles = campaign.audience.get("roles") or []
    categories = campaign.audience.get("categories") or []
    answered = exists().where(Response.campaign_id == campaign.id, Response.member_id == Member.id)
    members = await members_of(
        session, await _audience_orgs(session, campaign), roles=roles, categories=categories, where=~answered
    )
    return [m for m in members if not on_leave(m, day)]


async def nudge_counts(session: AsyncSession, member_ids: Sequence[int], since: dt.datetime) -> dict[int, int]:
    if not member_ids:
        return {}
    stmt = (
        select(NudgeLog.member_id, func.count())
        .where(NudgeLog.member_id.in_(list(member_ids)), NudgeLog.at >= since)
        .group_by(NudgeLog.member_id)
    )
    return {mid: int(n) for mid, n in (await session.execute(stmt)).all()}


async def within_caps(
    session: AsyncSession, members: Sequence[Member], local_now: dt.datetime, per_day: int, per_week: int
) -> list[Member]:
    """Members who may still be nudged today and this week (caps count every nudge in nudge_log)."""
    day_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = day_start - dt.timedelta(days=day_start.weekday())
    ids = [m.id for m in members]
    today = await nudge_counts(session, ids, day_start)
    week = await nudge_counts(session, ids, week_start)
    return [m for m in members if today.get(m.id, 0) < per_day and week.get(m.id, 0) < per_week]
