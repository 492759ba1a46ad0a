"""`dangjian members sync dingtalk|wecom`: fill platform user ids from the directory and report the rest."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select

from bot.app import BotApp
from bot.config import Settings
from bot.db.tables import Member, Org
from bot.directory import RosterEntry, SyncReport, match_directory
from bot.errors import ConfigError
from bot.message import Platform
from bot.migrations import upgrade
from bot.platform_factory import build_adapters

EXIT_OK, EXIT_BAD_INPUT = 0, 2


async def _entries(app: BotApp, platform: Platform) -> list[RosterEntry]:
    async with app.sessions() as session:
        orgs = {o.id: o.name for o in (await session.execute(select(Org))).scalars().all()}
        members = (await session.execute(select(Member).where(Member.active.is_(True)).order_by(Member.id))).scalars().all()
    column = "dingtalk_userid" if platform is Platform.DINGTALK else "wecom_userid"
    return [
        RosterEntry(
            m.id, m.name, m.mobile,
            tuple(n for n in (orgs.get(m.org_id), orgs.get(m.group_id) if m.group_id else None) if n),
            getattr(m, column),
        )
        for m in members
    ]


async def _write(app: BotApp, platform: Platform, report: SyncReport) -> None:
    column = "dingtalk_userid" if platform is Platform.DINGTALK else "wecom_userid"
    async with app.sessions() as session, session.begin():
        for entry, user, _how in report.matched:
            member = await session.get(Member, entry.member_id)
            if member is not None:
                value = user.user_id.lower() if platform is Platform.WECOM else user.user_id
                setattr(member, column, value)


def render(report: SyncReport, platform: str, dry_run: bool) -> str:
    lines = [f"通讯录同步 directory sync: {platform}{'（试运行，未写入 dry run）' if dry_run else ''}"]
    lines.append(f"已匹配 matched: {len(report.matched)}，原已绑定 unchanged: {len(report.unchanged)}")
    lines += [f"  + {e.name} → {u.user_id}（{how}）" for e, u, how in report.matched]
    if report.ambiguous:
        lines.append(f"需人工确认 ambiguous: {len(report.ambiguous)}")
        for entry, users in report.ambiguous:
            options = "；".join(f"{u.user_id}（{'、'.join(u.departments) or '无部门'}）" for u in users)
            lines.append(f"  ? {entry.name}（{'/'.join(entry.orgs)}）：{options}")
    if report.missing:
        lines.append(f"名册中有、平台上未找到 missing on platform: {len(report.missing)}")
        lines += [f"  - {e.name}（{'/'.join(e.orgs)}）" for e in report.missing]
    if report.not_in_roster:
        lines.append(f"平台上有、名册中没有 not in roster: {len(report.not_in_roster)}")
        lines += [f"  · {u.name} {u.user_id}（{'、'.join(u.departments)}）" for u in report.not_in_roster[:200]]
    return "\n".join(lines)


async def run_sync(settings: Settings, platform_name: str, dry_run: bool) -> int:
    platform = Platform(platform_name)
    app = BotApp(settings, scheduler=False, background_dispatch=False)
    try:
        if platform not in app.services.enabled_platforms:
            raise ConfigError(f"[{platform_name}] enabled = false: enable it and fill its credentials first")
        await upgrade(app.engine)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

            async def alert(_key: str, text: str) -> None:
                print(f"提醒 alert: {text}")

            adapter = build_adapters(app.services, http, alert)[platform]
            users = await adapter.directory()
            await adapter.stop()
        report = match_directory(await _entries(app, platform), users)
        if not dry_run:
            await _write(app, platform, report)
        print(render(report, platform_name, dry_run))
    finally:
        await app.kv.close()
        await app.engine.dispose()
    return EXIT_OK
