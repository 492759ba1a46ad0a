"""Who may do what: levels by role and polite refusals that say who can."""

from __future__ import annotations

from bot.context import HandlerContext
from bot.db.members import ADMIN_ROLE, SECRETARY_ROLES
from bot.db.tables import Member

LEVELS = {"member": 1, "secretary": 2, "committee": 3, "admin": 3}
REFUSALS = {
    "secretary": "抱歉，这个命令仅支部书记、副书记和管理员可以使用。",
    "committee": "抱歉，这个命令仅党委委员和管理员可以使用。",
    "admin": "抱歉，这个命令仅管理员可以使用。",
}


def level_of(member: Member) -> int:
    roles = member.role_list
    if ADMIN_ROLE in roles:
        return LEVELS["admin"]
    if any(r in roles for r in SECRETARY_ROLES):
        return LEVELS["secretary"]
    return LEVELS["member"]


def allowed(member: Member, audience: str) -> bool:
    return level_of(member) >= LEVELS.get(audience, 1)


def require(ctx: HandlerContext, audience: str) -> Member | None:
    """The member if allowed, else None after a polite refusal."""
    member = ctx.member
    assert member is not None  # the pipeline answers unknown senders before routing
    if allowed(member, audience):
        return member
    ctx.reply(REFUSALS.get(audience, REFUSALS["secretary"]))
    return None
