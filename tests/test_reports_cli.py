"""`dangjian export FORM --period … [--branch …] [-o …]`: the same ledger as /export; exit codes 0 / 2."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bot.cli import main
from bot.clock import FakeClock
from bot.config import Settings
from bot.reports.export_cli import run_export
from tests.conftest import start_bot, stop_bot


async def seeded(settings: Settings, clock: FakeClock) -> None:
    running = await start_bot(settings, clock)
    try:
        await running.say("group:第一党支部", "13800000003", "党费 45")
        await running.say("group:第二党支部", "13800000012", "党费 78")
    finally:
        await stop_bot(running)


def cli(settings: Settings, tmp_path: Path, *args: str) -> int:
    """The real console entry point (its own event loop, like `dangjian export …`)."""
    config = tmp_path / "dangjian.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir.as_posix()}"\n[database]\nurl = "{settings.database_url}"\n', encoding="utf-8"
    )
    return main(["export", *args, "--config", str(config)])


async def test_cli_writes_the_ledger_and_prints_the_path(
    settings: Settings, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seeded(settings, clock)
    target = tmp_path / "out" / "党费.xlsx"
    code = await asyncio.to_thread(cli, settings, tmp_path, "dues", "--period", "2026", "--branch", "第一党支部", "-o", str(target))
    assert code == 0
    assert capsys.readouterr().out.strip() == str(target.resolve())
    wb = openpyxl.load_workbook(target)
    assert wb.sheetnames == ["第一党支部"]
    rows = list(wb["第一党支部"].iter_rows(min_row=4, values_only=True))
    assert [r[1] for r in rows[:-1]][:3] == ["王建国", "李红梅", "张三"]
    header = next(wb["第一党支部"].iter_rows(min_row=3, max_row=3, values_only=True))
    assert float(rows[-1][header.index("实交（元）")]) == 45.0

    # no branch: every branch plus a summary sheet, written under data_dir/exports
    code = await asyncio.to_thread(cli, settings, tmp_path, "党费", "--period", "2026-11")
    assert code == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.parent == (settings.data_dir / "exports").resolve() and printed.suffix == ".xlsx"
    assert openpyxl.load_workbook(printed).sheetnames == ["汇总", "第一党支部", "第二党支部"]


async def test_cli_csv_and_exit_codes(settings: Settings, clock: FakeClock, tmp_path: Path, capsys: Any) -> None:
    await seeded(settings, clock)
    out = tmp_path / "theme.csv"
    assert await run_export(settings, "主题党日", "2026-11", "第二党支部", str(out)) == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert capsys.readouterr().out.strip() == str(out.resolve())

    bad = [
        ("nosuchform", "2026-11", None, None, "unknown form"),
        ("dues", "2026-13", None, None, "bad --period"),
        ("dues", "11月", None, None, "bad --period"),
        ("dues", "2026-11", "不存在的支部", None, "unknown branch"),
        ("dues", "2026-11", None, str(tmp_path / "x.pdf"), ".xlsx or .csv"),
    ]
    for form, period, branch, output, message in bad:
        assert await run_export(settings, form, period, branch, output) == 2, (form, period, branch, output)
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()
    assert await asyncio.to_thread(cli, settings, tmp_path, "dues", "--period", "2026-11", "--branch", "火星支部") == 2
