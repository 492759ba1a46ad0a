"""CLI command bodies (the parsing lives in bot.cli)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot import sections
from bot.clock import SystemClock
from bot.config import Settings
from bot.db.engine import create_engine, session_factory
from bot.errors import ConfigError
from bot.migrations import upgrade
from bot.roster import import_roster_file

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


async def import_members(settings: Settings, path: Path, dry_run: bool) -> int:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            report = await import_roster_file(session, path, SystemClock().now())
            if dry_run:
                await session.rollback()
    finally:
        await engine.dispose()
    verb = "检查通过（未写入）dry run OK" if dry_run else "导入完成 imported"
    print(f"{verb}: {len(report.rows)} 行 rows, 新增 created {report.created}, 更新 updated {report.updated}")
    return EXIT_OK


def check_config(settings: Settings) -> int:
    problems: list[str] = []
    try:
        sections.validate_sections(settings)
    except ConfigError as exc:
        print(f"配置错误 config error: {exc}")
        return EXIT_BAD_INPUT
    dingtalk = sections.dingtalk_settings(settings)
    wecom = sections.wecom_settings(settings)
    if dingtalk.enabled:
        from bot.platforms.dingtalk.settings import missing_for_mode

        problems += [f"[dingtalk] {p}" for p in missing_for_mode(dingtalk)]
    if wecom.enabled:
        from bot.platforms.wecom.settings import missing_config

        problems += [f"[wecom] {p}" for p in missing_config(wecom)]
    if settings.local.enabled:
        print("本地聊天 local chat: 已启用 enabled (/chat)")
    print(f"数据库 database: {'SQLite' if settings.is_sqlite else 'PostgreSQL'}")
    print(f"KV: {'Redis' if settings.redis.url else '进程内 in-process (single instance)'}")
    if not (settings.local.enabled or dingtalk.enabled or wecom.enabled):
        problems.append("没有启用任何平台 no platform enabled ([local], [dingtalk] or [wecom])")
    if problems:
        print("还缺少 still missing:")
        for problem in problems:
            print(f"  - {problem}")
        return EXIT_BAD_INPUT
    print("配置检查通过 config OK")
    return EXIT_OK


def _parse_day(value: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{flag}: expected YYYY-MM-DD, got {value!r}") from exc


async def schedule_preview(settings: Settings, start: str, end: str) -> int:
    from schedules.preview import render_preview

    first, last = _parse_day(start, "--from"), _parse_day(end, "--to")
    if last < first:
        raise ConfigError("--to is before --from")
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        print(await render_preview(settings, session_factory(engine), first, last))
    finally:
        await engine.dispose()
    return EXIT_OK


async def sync_members(settings: Settings, platform: str, dry_run: bool) -> int:
    from bot.directory_sync import run_sync

    return int(await run_sync(settings, platform, dry_run))


async def export_ledger(settings: Settings, form: str, period: str, branch: str | None, output: str | None) -> int:
    from bot.reports.export_cli import run_export

    return int(await run_export(settings, form, period, branch, output))
