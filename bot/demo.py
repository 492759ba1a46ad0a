"""The demo organisation seeded into an empty database, and [[groups]] bindings from the config."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import GroupBinding
from bot.db.orgs import branches, find_org
from bot.db.tables import ChatBinding
from bot.logs import app_log, log_event
from bot.roster import apply_roster, parse_roster, read_table

DEMO_ROSTER = Path(__file__).parent / "demo_roster.csv"


async def bind_chat(
    session: AsyncSession, platform: str, conversation_id: str, org_id: int, now: dt.datetime,
    webhook_url: str = "", webhook_secret: str = "",
) -> ChatBinding:
    stmt = select(ChatBinding).where(ChatBinding.platform == platform, ChatBinding.conversation_id == conversation_id)
    binding = (await session.execute(stmt)).scalar_one_or_none()
    if binding is None:
        binding = ChatBinding(platform=platform, conversation_id=conversation_id, org_id=org_id, created_at=now)
        session.add(binding)
    binding.org_id = org_id
    binding.webhook_url = webhook_url
    binding.webhook_secret = webhook_secret
    await session.flush()
    return binding


async def sync_config_groups(session: AsyncSession, groups: Sequence[GroupBinding], now: dt.datetime) -> None:
    for group in groups:
        org = await find_org(session, group.org)
        if org is None:
            log_event(app_log, "group_org_unknown", org=group.org, conversation_id=group.conversation_id)
            continue
        await bind_chat(
            session, group.platform, group.conversation_id, org.id, now, group.webhook_url, group.webhook_secret
        )


async def seed_demo(session: AsyncSession, now: dt.datetime) -> None:
    """The demo roster and a local group chat per branch."""
    rows = parse_roster(read_table(DEMO_ROSTER))
    await apply_roster(session, rows, now)
    for branch in await branches(session):
        await bind_chat(session, "local", f"group:{branch.name}", branch.id, now)
    log_event(app_log, "demo_seeded", members=len(rows))
