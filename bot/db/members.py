"""Member lookups: by platform identity, by name within a branch, audiences for campaigns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.tables import Member, Org
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


_PREFETCHED = "members_by_sender"  # session.info: (platform, sender id) → Member | None


def _sender_key(platform: Platform, sender_id: str) -> str:
    return sender_id.lower() if platform is Platform.WECOM else sender_id


async def find_by_platform_id(session: AsyncSession, platform: Platform, sender_id: str) -> Member | None:
    if not sender_id:
        return None
    sender_id = _sender_key(platform, sender_id)
    prefetched: dict[tuple[Platform, str], Member | None] = session.info.get(_PREFETCHED, {})
    if (platform, sender_id) in prefetched:
        return prefetched[(platform, sender_id)]
    rows = (await session.execute(_by_platform_id(platform), {"sender_id": sender_id})).all()
    if len(rows) != 1:
        return None
    member: Member = rows[0][0]
    # The member's branch came along in the same query and sits in the session's identity map, so the
    # handlers' ``session.get(Org, member.org_id)`` (scope checks, branch names) needs no round trip.
    # The identity map holds objects weakly: the session keeps it.
    session.info.setdefault("kept", []).append(rows[0][1])
    return member


async def prefetch_by_platform_ids(session: AsyncSession, platform: Platform, sender_ids: Sequence[str]) -> None:
    """Look up a group of senders in one query; ``find_by_platform_id`` then answers them from the session.

    DingTalk and WeCom ids only (one indexed column each); the local chat's ids keep the per-message query."""
    wanted = {_sender_key(platform, s) for s in sender_ids if s}
    if platform not in (Platform.DINGTALK, Platform.WECOM) or not wanted:
        return
    found: dict[str, list[Member]] = {}
    kept = session.info.setdefault("kept", [])
    for member, org in (await session.execute(_by_platform_ids(platform), {"senders": list(wanted)})).tuples():
        found.setdefault(_sender_key(platform, platform_user_id(member, platform)), []).append(member)
        kept.append(org)
    prefetched = session.info.setdefault(_PREFETCHED, {})
    for sender in wanted:
        hits = found.get(sender, [])
        prefetched[(platform, sender)] = hits[0] if len(hits) == 1 else None  # ambiguous ids match no one


@cache
def _by_platform_id(platform: Platform) -> Select[tuple[Member, Org]]:
    """Built once per platform with a bind parameter: every message runs it."""
    sender = bindparam("sender_id", type_=Member.name.type)
    if platform is Platform.DINGTALK:
        match = Member.dingtalk_userid == sender
    elif platform is Platform.WECOM:
        match = Member.wecom_userid == sender
    else:
        match = (Member.mobile == sender) | (Member.mobile.is_(None) & (Member.name == sender))
    return select(Member, Org).join(Org, Org.id == Member.org_id).where(match, Member.active.is_(True))


@cache
def _by_platform_ids(platform: Platform) -> Select[tuple[Member, Org]]:
    """Built once per platform, the senders as one expanding bind parameter: every group runs it."""
    column = Member.dingtalk_userid if platform is Platform.DINGTALK else Member.wecom_userid
    senders = bindparam("senders", expanding=True, type_=Member.name.type)
    return select(Member, Org).join(Org, Org.id == Member.org_id).where(column.in_(senders), Member.active.is_(True))


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
