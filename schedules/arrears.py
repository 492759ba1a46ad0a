"""Dues arrears: consecutive unpaid months per member, and the private notices to the secretary.

The bot never marks anyone as lapsed (自行脱党): that is a decision of the branch general meeting."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.members import members_of
from bot.db.tables import Campaign, Response


@dataclass(frozen=True, slots=True)
class Arrears:
    member_id: int
    name: str
    months: int


async def arrears_in_branch(session: AsyncSession, org_id: int, now: dt.datetime, lookback: int = 7) -> list[Arrears]:
    """Members whose most recent closed dues campaigns (deadline passed) have no answer, counted back."""
    stmt = (
        select(Campaign.id)
        .where(Campaign.org_id == org_id, Campaign.form_key == "dues", Campaign.deadline_at < now)
        .order_by(Campaign.deadline_at.desc())
        .limit(lookback)
    )
    campaign_ids = list((await session.execute(stmt)).scalars().all())
    if not campaign_ids:
        return []
    paid = set(
        (await session.execute(
            select(Response.campaign_id, Response.member_id).where(Response.campaign_id.in_(campaign_ids))
        )).tuples().all()
    )
    found = []
    for member in await members_of(session, [org_id]):
        streak = 0
        for cid in campaign_ids:
            if (cid, member.id) in paid:
                break
            streak += 1
        if streak:
            found.append(Arrears(member.id, member.name, streak))
    return found


def arrears_notice(arrears: list[Arrears], notice_months: int, warning_months: int) -> str:
    """The secretary's private notice, or "" when nobody reaches the notice threshold."""
    warned = [a for a in arrears if a.months >= warning_months]
    noticed = [a for a in arrears if notice_months <= a.months < warning_months]
    lines = []
    if noticed:
        names = "、".join(f"{a.name}（{a.months}个月）" for a in noticed)
        lines.append(
            f"连续{notice_months}个月以上未交党费：{names}。请支部及时了解情况，按规定批评教育、限期改正"
            "（中组发〔2008〕3号第十三条）。"
        )
    for a in warned:
        lines.append(
            f"⚠ {a.name}已连续{a.months}个月未交党费。按《党章》规定，党员无正当理由连续6个月不交纳党费，"
            "视为自行脱党，由支部党员大会讨论决定、报上级党组织批准。请尽快当面了解情况；机器人不会自动作出任何认定。"
        )
    return "\n".join(lines)
