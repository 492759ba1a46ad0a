"""`dangjian export FORM --period YYYY-MM|YYYY [--branch NAME] [-o FILE.xlsx|.csv]`: the same ledger as /export.

Exit codes: 0 written (the path is printed), 2 unknown form or branch, bad period or output suffix,
1 other errors (raised to bot.cli).
"""

from __future__ import annotations

import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import sections
from bot.clock import SystemClock
from bot.config import Settings
from bot.db import orgs as org_repo
from bot.db.engine import create_engine, session_factory
from bot.migrations import upgrade
from bot.reports.ledgers import build_ledger, find_form
from bot.reports.periods import parse_period
from bot.reports.xlsx import SUFFIXES, export_path, save_ledger

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def _bad(message: str) -> int:
    print(message, file=sys.stderr)
    return EXIT_BAD_INPUT


def _target(output: str | None) -> Path | None:
    return Path(output).expanduser().resolve() if output else None


async def run_export(settings: Settings, form: str, period: str, branch: str | None, output: str | None) -> int:
    forms = sections.form_specs(settings)
    spec = find_form(forms, form)
    if spec is None:
        known = "、".join(f"{f.key}（{f.name}）" for f in forms.values())
        return _bad(f"未知的表单 unknown form: {form!r}。可选 choose one of: {known}")
    report_period = parse_period(period)
    if report_period is None:
        return _bad(f"时间段格式不对 bad --period {period!r}: 例如 e.g. 2026-11、2026 或 2026-Q4")
    target = _target(output)
    if target is not None and target.suffix.lower() not in SUFFIXES:
        return _bad(f"输出文件须为 .xlsx 或 .csv (-o must end with .xlsx or .csv): {output}")
    clock = SystemClock(ZoneInfo(settings.timezone))
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            if branch:
                org = await org_repo.find_org(session, branch)
                if org is None:
                    return _bad(f"未找到组织 unknown branch: {branch!r}（请写支部名称或完整路径，例如 机关党委/第一党支部）")
                branches = [org] if org.kind == "branch" else await org_repo.branches(session, org)
                scope_name = org.name
            else:
                branches = await org_repo.branches(session)
                scope_name = "全部支部"
            now = clock.now()
            ledger = await build_ledger(
                session, spec, report_period, branches, now=now, tz=clock.tz, scope_name=scope_name,
                policy=sections.dues_policy(settings),
            )  # fmt: skip
    finally:
        await engine.dispose()
    path = target if target is not None else export_path(settings.data_dir, ledger)
    await save_ledger(ledger, path)
    print(path)
    return EXIT_OK
