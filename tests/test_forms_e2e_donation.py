"""A donation drive declared only in the config (issue "Forms", must-show 4), end to end: the secretary
opens it with `发起 捐款`, members answer `捐款 100` / `捐款 五十元`, a bare amount while the dues
collection is open too is asked about, `/stats 捐款` shows the total 1:1 (not in the group), and the
ledger export carries the amounts. No code knows this form: it comes from ``[[forms]]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import select

from bot.clock import FakeClock
from bot.db.tables import Campaign
from tests.conftest import start_bot, stop_bot
from tests.test_forms_e2e_support import (
    GROUP1,
    answer_of,
    answers,
    assert_group_private,
    assert_rejection,
    bot_lines,
    dm,
    dues_campaign,
    joined,
    member_id,
    say,
    texts,
)

DONATION = {
    "key": "donation",
    "name": "捐款",
    "keywords": ["捐款"],
    "private": True,
    "fields": [{"key": "amount", "label": "捐款金额", "type": "money"}],
}


async def test_donation_drive_from_config_only(settings_factory: Any, clock: FakeClock) -> None:
    settings = await settings_factory(forms=[DONATION])
    bot = await start_bot(settings, clock)
    try:
        data = await say(bot, dm("王建国"), "王建国", "发起 捐款")
        assert "已为第一党支部发起“捐款（11月27日发起）”" in joined(data)
        async with bot.app.sessions() as s:
            campaign = (await s.execute(select(Campaign).where(Campaign.form_key == "donation"))).scalar_one()
        assert [t for t in bot_lines(await bot.transcript(GROUP1)) if "捐款" in t], "announced in the group"

        data = await say(bot, GROUP1, "张三", "@党建助手 捐款 100")
        assert texts(data, GROUP1) == ["已登记“捐款（11月27日发起）”，详情已私信。"]
        assert "100.00元" in joined(data, dm("张三"))
        data = await say(bot, dm("李四"), "李四", "捐款 五十元")
        assert texts(data) == ["已登记：捐款（11月27日发起） — 50.00元"]

        rows = await answers(bot, campaign_id=campaign.id)
        assert [(r.member_id, r.amount_fen, r.flagged, r.values) for r in rows] == [
            (await member_id(bot, "张三"), 10000, False, {"amount": 10000}),
            (await member_id(bot, "李四"), 5000, False, {"amount": 5000}),
        ]
        assert await answers(bot, form_key="dues") == []

        # A bare amount fits both the dues and the donation: the bot asks which, a number picks.
        data = await say(bot, GROUP1, "王五", "200")
        question = texts(data)[0]
        assert question.startswith("您有2项待填报，这条回复是哪一项？")
        lines = question.splitlines()
        pick = next(line.split(".")[0] for line in lines if "捐款（11月27日发起）" in line)
        data = await say(bot, GROUP1, "王五", pick)
        assert texts(data, GROUP1) == ["已登记“捐款（11月27日发起）”，详情已私信。"]
        row = await answer_of(bot, campaign.id, "王五")
        assert row is not None and row.amount_fen == 20000
        assert await answer_of(bot, await dues_campaign(bot), "王五") is None

        # A wrong amount: one sentence with an example, 1:1 only.
        data = await say(bot, GROUP1, "赵六", "捐款 -10")
        assert texts(data, GROUP1) == ["“捐款”的填报提示已私信您，请按提示回复（金额只在私聊中显示）。"]
        assert_rejection(joined(data, dm("赵六")))
        await say(bot, GROUP1, "赵六", "取消")

        # /stats: the total only 1:1; in the group the counts without money.
        data = await say(bot, dm("王建国"), "王建国", "/stats 捐款")
        stats = joined(data)
        assert "捐款" in stats and "3/8" in stats and "合计 350.00 元" in stats
        data = await say(bot, GROUP1, "王建国", "统计 捐款")
        assert "3/8" in joined(data) and "350" not in joined(data)

        # The ledger export carries the amounts (sent 1:1 as a file).
        data = await say(bot, GROUP1, "王建国", "导出 捐款 2026-11")
        assert texts(data, GROUP1) == ["台账已生成并私信发送给您（台账含个人信息，不在群内发送）。"]
        saved = next(t for t in texts(data, dm("王建国")) if "保存位置：" in t).split("保存位置：")[1].strip()
        cells = _cells(Path(saved))
        for name, amount in (("张三", 100), ("李四", 50), ("王五", 200)):
            assert any(name in row and any(_yuan(c) == amount for c in row) for row in cells), (name, cells)

        await assert_group_private(bot, 100, 200, 350, 10, 50)
    finally:
        await stop_bot(bot)


def _cells(path: Path) -> list[list[str]]:
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    return [[str(c) for c in row if c is not None] for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]


def _yuan(cell: str) -> float | None:
    try:
        return float(cell.replace("元", "").replace(",", ""))
    except ValueError:
        return None
