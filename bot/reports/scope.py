"""Who may see which organisations' reports. Pure rules plus one lookup; chat, CLI and dashboard share it.

- a member sees only their own records (reports are refused, naming who can);
- a secretary (书记/副书记) sees their own branch (or the subtree of the organisation they belong to);
- an admin (管理员) sees the whole tree, or any organisation by name;
- the CLI and the admin dashboard act as :meth:`ReportScope.superuser`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import orgs as org_repo
from bot.db.members import is_admin, is_secretary
from bot.db.tables import Member, Org

OFFICERS = "支部书记、副书记和管理员"
MEMBER_REFUSAL = f"抱歉，这个命令仅{OFFICERS}可以使用。您可以发送“我的”查看自己的记录。"


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What one viewer may see. ``home_org_id`` is the organisation a secretary belongs to."""

    level: str  # "member" | "secretary" | "admin"
    member_id: int | None = None
    home_org_id: int | None = None

    @classmethod
    def for_member(cls, member: Member) -> ReportScope:
        if is_admin(member):
            level = "admin"
        elif is_secretary(member):
            level = "secretary"
        else:
            level = "member"
        return cls(level, member.id, member.org_id)

    @classmethod
    def superuser(cls) -> ReportScope:
        """The CLI and the admin dashboard: the whole tree."""
        return cls("admin")

    @property
    def is_admin(self) -> bool:
        return self.level == "admin"

    @property
    def may_report(self) -> bool:
        return self.level in ("secretary", "admin")


@dataclass(frozen=True, slots=True)
class ScopedOrgs:
    """The branches a report covers, the organisation named (if any), or a refusal in Chinese."""

    branches: list[Org]
    named: Org | None = None
    refusal: str = ""

    @property
    def ok(self) -> bool:
        return not self.refusal


def _within(org: Org, root: Org) -> bool:
    return org.path == root.path or org.path.startswith(root.path + "/")


async def _branches_of(session: AsyncSession, org: Org) -> list[Org]:
    if org.kind == "branch":
        return [org]
    if org.kind == "group" and org.parent_id is not None:
        return [await org_repo.get_org(session, org.parent_id)]
    return await org_repo.branches(session, org)


async def scoped_branches(session: AsyncSession, scope: ReportScope, name: str | None = None) -> ScopedOrgs:
    """The branches ``scope`` may see, narrowed to the organisation ``name`` when given.

    Refusals are polite and say who can see it; an unknown name says so (for every level).
    """
    if not scope.may_report:
        return ScopedOrgs([], refusal=MEMBER_REFUSAL)
    home = await session.get(Org, scope.home_org_id) if scope.home_org_id is not None else None
    if name:
        org = await org_repo.find_org(session, name)
        if org is None:
            return ScopedOrgs([], refusal=f"没有找到名为“{name}”的组织，请核对名称，例如：第一党支部。")
        if not scope.is_admin and (home is None or not _within(org, home)):
            own = f"本支部（{home.name}）" if home is not None else "本支部"
            return ScopedOrgs(
                [], named=org, refusal=f"抱歉，您只能查看{own}的情况。{org.name}的情况请联系该支部书记或管理员。"
            )
        return ScopedOrgs(await _branches_of(session, org), named=org)
    if scope.is_admin:
        return ScopedOrgs(await org_repo.branches(session))
    if home is None:
        return ScopedOrgs([], refusal="没有找到您所在的支部，请联系管理员核对名册。")
    return ScopedOrgs(await _branches_of(session, home), named=home)


def may_manage(scope: ReportScope, org: Org, home: Org | None) -> bool:
    """Admins manage any organisation; secretaries their own branch (or what lies under their org)."""
    if scope.is_admin:
        return True
    return scope.level == "secretary" and home is not None and _within(org, home)
