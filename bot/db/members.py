"""Member lookups: by platform identity, by name within a branch, audiences for campaigns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.tables import Member
from bot.message import Platform

SECRETARY_ROLES = ("书记", "副书记")
COMMITTEE_ROLES = ("委员",)
ADMIN_ROLE = "管理员"


def has_role(member: Member, *roles: str) -> bool:
    return any(r in member.role_list for r in roles)


def is_secretary(member: Member) -> bool:
    return has_role(member, *SECRETARY_ROLES)


def is_admin(member: Member) -> bool:
    return has_role(member, ADMIN_ROLE)


def local_id(member: Member) -> str:
    """The local chat sender id: the mobile number, or the name when no mobile is on file."""
    return member.mobile or member.name


async def find_by_platform_id(session: AsyncSession, platform: Platform, sender_id: str) -> Member | None:
    if not sender_id:
        return None
    if platform is Platform.DINGTALK:
        stmt = select(Member).where(Member.dingtalk_userid == sender_id)
    elif platform is Platform.WECOM:
        stmt = select(Member).where(Member.wecom_userid == sender_id.lower())
    else:
        stmt = select(Member).where((Member.mobile == sender_id) | ((Member.mobile.is_(None)) & (Member.name == sender_id)))
    rows = (await session.execute(stmt.where(Member.active.is_(True)))).scalars().all()
    return rows[0] if len(rows) == 1 else None


async def roster_names(session: AsyncSession, org_id: int) -> list[tuple[int, str]]:
    """(id, name) of a branch's active members, in id order: columns only, no ORM objects (hot path)."""
    stmt = (
        select(Member.id, Member.name)
        .where(Member.org_id == org_id, Member.active.is_(True))
        .order_by(Member.id)
    )
    return [(int(i), str(n)) for i, n in (await session.execute(stmt)).all()]


def platform_user_id(member: Member, platform: Platform) -> str:
    if platform is Platform.DINGTALK:
        return member.dingtalk_userid or ""
    if platform is Platform.WECOM:
        return member.wecom_userid or ""
    return local_id(member)


async def members_of(
    session: AsyncSession,
    org_ids: Sequence[int],
    roles: Sequence[str] = (),
    categories: Sequence[str] = (),
    where: ColumnElement[bool] | None = None,
) -> list[Member]:
    stmt = select(Member).where(Member.org_id.in_(list(org_ids)), Member.active.is_(True)).order_by(Member.id)
    if where is not None:
        stmt = stmt.where(where)
    if categories:
        stmt = stmt.where(Member.category.in_(list(categories)))
    members = list((await session.execute(stmt)).scalars().all())
    if roles:  # few rows per branch: filter here rather than OR-ing LIKEs
        members = [m for m in members if has_role(m, *roles)]
    return members


def role_filter(role: str) -> ColumnElement[bool]:
    return Member.roles.like(f"%,{role},%")


def on_leave(member: Member, day: dt.date) -> bool:
    return member.leave_until is not None and day <= member.leave_until


async def secretaries_of(session: AsyncSession, org_id: int) -> list[Member]:
    return [m for m in await members_of(session, [org_id]) if is_secretary(m)]


async def admins(session: AsyncSession) -> list[Member]:
    stmt = select(Member).where(Member.active.is_(True), role_filter(ADMIN_ROLE)).order_by(Member.id)
    return list((await session.execute(stmt)).scalars().all())
