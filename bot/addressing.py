"""Where to reach a member or a branch: platform choice and chat bindings."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.members import local_id
from bot.db.tables import ChatBinding, Member
from bot.message import MessageFormat, OutgoingMessage, Platform, Recipient

# Preference when a member is reachable on several platforms: the work platforms first.
PLATFORM_ORDER = (Platform.DINGTALK, Platform.WECOM, Platform.LOCAL)


def member_recipient(member: Member, enabled: Collection[Platform]) -> Recipient | None:
    for platform in PLATFORM_ORDER:
        if platform not in enabled:
            continue
        if platform is Platform.DINGTALK and member.dingtalk_userid:
            return Recipient(platform, user_id=member.dingtalk_userid)
        if platform is Platform.WECOM and member.wecom_userid:
            return Recipient(platform, user_id=member.wecom_userid)
        if platform is Platform.LOCAL:
            return Recipient(platform, user_id=local_id(member))
    return None


def mention_id(member: Member, platform: Platform) -> str:
    if platform is Platform.DINGTALK:
        return member.dingtalk_userid or ""
    if platform is Platform.WECOM:
        return member.wecom_userid or ""
    return local_id(member)


async def org_chats(session: AsyncSession, org_id: int, enabled: Collection[Platform]) -> list[ChatBinding]:
    rows = (await session.execute(select(ChatBinding).where(ChatBinding.org_id == org_id))).scalars().all()
    return [b for b in rows if Platform(b.platform) in enabled]


async def group_messages(
    session: AsyncSession,
    org_id: int,
    text: str,
    enabled: Collection[Platform],
    mention: Collection[Member] = (),
    title: str = "",
    fmt: MessageFormat = MessageFormat.TEXT,
) -> list[OutgoingMessage]:
    """One message per bound chat of the org; @-mentions filled per platform where ids are known."""
    out = []
    for binding in await org_chats(session, org_id, enabled):
        platform = Platform(binding.platform)
        ids = tuple(i for i in (mention_id(m, platform) for m in mention) if i)
        out.append(
            OutgoingMessage(
                recipient=Recipient(platform, conversation_id=binding.conversation_id),
                text=text,
                title=title,
                format=fmt,
                mention_user_ids=ids,
            )
        )
    return out
