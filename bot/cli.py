"""The `dangjian` command line (interface.md). Exit codes: 0 ok, 2 bad input or config, 1 other errors."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bot.config import Settings, load_settings
from bot.errors import BotError, ConfigError, RosterError
from bot.logs import setup_logging

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dangjian", description="党建助手 dangjian-bot")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="TOML config file (or env DANGJIAN_CONFIG)")
        return p

    run = with_config(sub.add_parser("run", help="start the bot"))
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--data-dir")
    run.add_argument("--workers", type=int, help="processes sharing the port (needs PostgreSQL + Redis)")
    run.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    with_config(db_sub.add_parser("upgrade", help="apply migrations"))

    members = sub.add_parser("members", help="roster commands")
    m_sub = members.add_subparsers(dest="members_command", required=True)
    imp = with_config(m_sub.add_parser("import", help="import a CSV/XLSX roster"))
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true")
    sync = with_config(m_sub.add_parser("sync", help="fill platform user ids from the directory"))
    sync.add_argument("platform", choices=["dingtalk", "wecom"])
    sync.add_argument("--dry-run", action="store_true")

    schedule = sub.add_parser("schedule", help="schedule commands")
    s_sub = schedule.add_subparsers(dest="schedule_command", required=True)
    preview = with_config(s_sub.add_parser("preview", help="print what would be sent, send nothing"))
    preview.add_argument("--from", dest="start", required=True)
    preview.add_argument("--to", dest="end", required=True)

    export = with_config(sub.add_parser("export", help="write a ledger"))
    export.add_argument("form")
    export.add_argument("--period", required=True)
    export.add_argument("--branch")
    export.add_argument("-o", "--output")

    with_config(sub.add_parser("check-config", help="validate the config"))
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "server.host": getattr(args, "host", None),
        "server.port": getattr(args, "port", None),
        "data_dir": getattr(args, "data_dir", None),
        "server.workers": getattr(args, "workers", None),
    }
    return load_settings(getattr(args, "config", None), overrides=overrides)


async def _cmd_run(args: argparse.Namespace) -> int:
    from bot.app import serve

    settings = _settings(args)
    setup_logging(settings.log_level)
    index = args.worker_index
    await serve(settings, settings.server.host, settings.server.port,
                worker=index, scheduler=None if index in (None, 0) else False)
    return EXIT_OK


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    """``run --workers N`` (N > 1): the workers are ``run`` processes; this one only watches them."""
    from bot.workers import Supervisor, worker_argv

    base: list[str] = []
    for flag, value in (("--config", args.config), ("--host", settings.server.host),
                        ("--port", settings.server.port), ("--data-dir", args.data_dir)):
        if value is not None:
            base += [flag, str(value)]
    workers = settings.server.workers
    supervisor = Supervisor(lambda i: worker_argv(base, workers, i), workers, settings.server.host,
                            settings.server.port)
    return supervisor.run()


async def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.db.engine import create_engine
    from bot.migrations import upgrade

    settings = _settings(args)
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(f"数据库已升级到最新版本 database upgraded: {settings.database_url.split('@')[-1]}")
    return EXIT_OK


async def _cmd_members_import(args: argparse.Namespace) -> int:
    from bot.commands import import_members

    return await import_members(_settings(args), Path(args.file), args.dry_run)


async def _cmd_members_sync(args: argparse.Namespace) -> int:
    from bot.commands import sync_members

    return await sync_members(_settings(args), args.platform, args.dry_run)


async def _cmd_schedule_preview(args: argparse.Namespace) -> int:
    from bot.commands import schedule_preview

    return await schedule_preview(_settings(args), args.start, args.end)


async def _cmd_export(args: argparse.Namespace) -> int:
    from bot.commands import export_ledger

    return await export_ledger(_settings(args), args.form, args.period, args.branch, args.output)


async def _cmd_check_config(args: argparse.Namespace) -> int:
    from bot.commands import check_config

    return check_config(_settings(args))


COMMANDS: dict[tuple[str, ...], Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    ("run",): _cmd_run,
    ("db", "upgrade"): _cmd_db_upgrade,
    ("members", "import"): _cmd_members_import,
    ("members", "sync"): _cmd_members_sync,
    ("schedule", "preview"): _cmd_schedule_preview,
    ("export",): _cmd_export,
    ("check-config",): _cmd_check_config,
}


def _key(args: argparse.Namespace) -> tuple[str, ...]:
    parts = [args.command]
    for attr in ("db_command", "members_command", "schedule_command"):
        if getattr(args, attr, None):
            parts.append(getattr(args, attr))
    return tuple(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = COMMANDS[_key(args)]
    try:
        if args.command == "run" and args.worker_index is None and (settings := _settings(args)).server.workers > 1:
            return _supervise(args, settings)
        return asyncio.run(command(args))
    except KeyboardInterrupt:
        return EXIT_OK
    except RosterError as exc:
        print("名册有误，未导入任何数据 roster rejected, nothing imported:", file=sys.stderr)
        for row, reason in exc.problems:
            print(f"  第{row}行 row {row}: {reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConfigError as exc:
        print(f"配置错误 config error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BotError as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
