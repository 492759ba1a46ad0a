"""/remind, /bind, /campaign, /compliance and /stats end to end over the local chat HTTP API."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select

from bot.clock import SHANGHAI, FakeClock
from bot.config import Settings
from bot.db.tables import AuditEntry, Campaign, ChatBinding, NudgeLog, Org
from tests.conftest import Running, start_bot, stop_bot

GROUP1, GROUP2 = "group:第一党支部", "group:第二党支部"
SECRETARY, SECRETARY2, ADMIN = "13800000001", "13800000011", "13800000014"  # 王建国, 孙丽, 郑华
ZHANG_SAN, LI_SI, WANG_WU = "13800000003", "13800000004", "13800000005"
MONEY_RE = re.compile(r"\d+(?:\.\d+)?\s*元|¥|￥")


def dm(sender: str) -> str:
    return f"dm:{sender}"


def bot_lines(transcript: list[dict[str, Any]]) -> list[str]:
    return [line["text"] for line in transcript if line["sender_id"] == "bot"]


async def ask(running: Running, conversation: str, sender: str, text: str) -> str:
    data = await running.say(conversation, sender, text)
    return "\n".join(r["text"] for r in data["replies"])


async def scalar(running: Running, stmt: Any) -> Any:
    async with running.app.sessions() as session:
        return (await session.execute(stmt)).scalar_one()


async def audits(running: Running, action: str) -> list[AuditEntry]:
    async with running.app.sessions() as session:
        return list((await session.execute(select(AuditEntry).where(AuditEntry.action == action))).scalars().all())


async def test_remind_names_only_the_missing_and_respects_caps(bot: Running, clock: FakeClock) -> None:
    await bot.say(GROUP1, ZHANG_SAN, "党费 45")
    await bot.say(dm(LI_SI), LI_SI, "请假 至 12月20日 出差")  # on leave: not missing, not nudged
    group_before = len(bot_lines(await bot.transcript(GROUP1)))
    missing = ["王建国", "李红梅", "王五", "赵六", "陈七", "刘洋"]

    text = await ask(bot, dm(SECRETARY), SECRETARY, "提醒")
    assert f"已在本支部群内@提醒 {len(missing)} 人：" + "、".join(missing) in text, text
    nudge = bot_lines(await bot.transcript(GROUP1))[group_before:]
    assert len(nudge) == 1  # one batched group message naming everyone missing
    named = re.search(r"以下同志尚未填报：(\S+)", nudge[0])
    assert named and named.group(1).split("、") == missing, nudge
    assert "张三" not in nudge[0] and "李四" not in nudge[0]
    assert not MONEY_RE.search(re.sub(r"^(@\S+\s*)+", "", nudge[0]))
    assert "@13800000003" not in nudge[0] and "@13800000001" in nudge[0]  # mentions only the missing
    assert await scalar(bot, select(func.count()).select_from(NudgeLog)) == len(missing)

    await ask(bot, dm(SECRETARY), SECRETARY, "提醒")  # second nudge today: still within 2/day
    assert await scalar(bot, select(func.count()).select_from(NudgeLog)) == 2 * len(missing)
    third = await ask(bot, dm(SECRETARY), SECRETARY, "提醒")
    assert "本次未再提醒" in third and "每天最多2次" in third, third
    assert "已在本支部群内@提醒" not in third
    assert await scalar(bot, select(func.count()).select_from(NudgeLog)) == 2 * len(missing)
    assert len(bot_lines(await bot.transcript(GROUP1))) == group_before + 2
    entries = await audits(bot, "remind")
    assert len(entries) == 3 and entries[2].detail["nudged"] == [] and len(entries[2].detail["capped"]) == 6

    clock.set(dt.datetime(2026, 11, 27, 22, 30, tzinfo=SHANGHAI))  # quiet hours: nothing is sent
    late = await ask(bot, dm(SECRETARY), SECRETARY, "提醒")
    assert "休息时间" in late
    assert len(bot_lines(await bot.transcript(GROUP1))) == group_before + 2


async def test_bind_then_campaign_announces_in_the_bound_group(bot: Running) -> None:
    study = "group:第一党支部学习群"
    assert "请在需要绑定的群聊中" in await ask(bot, dm(SECRETARY), SECRETARY, "绑定 第一党支部")
    assert (await ask(bot, study, ZHANG_SAN, "绑定 第一党支部")).startswith("抱歉")
    assert "已将本群绑定到第一党支部" in await ask(bot, study, SECRETARY, "/bind 第一党支部")
    assert "无需重复绑定" in await ask(bot, study, SECRETARY, "绑定 第一党支部")
    # another branch's secretary cannot take the group over; an admin can move it
    assert "改绑需由管理员或第一党支部的书记操作" in await ask(bot, study, SECRETARY2, "绑定 第二党支部")
    moved = await ask(bot, study, ADMIN, "绑定 第二党支部")
    assert "已将本群绑定到第二党支部（原绑定：第一党支部）" in moved
    assert "已将本群绑定到第一党支部（原绑定：第二党支部）" in await ask(bot, study, ADMIN, "绑定 第一党支部")
    async with bot.app.sessions() as session:
        binding = (await session.execute(select(ChatBinding).where(ChatBinding.conversation_id == study))).scalar_one()
        org = await session.get(Org, binding.org_id)
    assert org is not None and org.name == "第一党支部"
    assert [e.detail["conversation_id"] for e in await audits(bot, "bind_chat")] == [study] * 3

    # /campaign: default deadline one week on at 18:00, announced in both of the branch's groups
    reply = await ask(bot, dm(SECRETARY), SECRETARY, "/campaign 主题党日")
    assert "已为第一党支部发起“主题党日签到（11月27日发起）”，截止12月4日18:00" in reply, reply
    for group in (GROUP1, study):
        assert any("【主题党日签到（11月27日发起）】王建国发起" in t for t in bot_lines(await bot.transcript(group)))
    assert not any("主题党日" in t for t in bot_lines(await bot.transcript(GROUP2)))
    async with bot.app.sessions() as session:
        campaign = (await session.execute(select(Campaign).where(Campaign.form_key == "theme_day"))).scalar_one()
    assert campaign.schedule_key == "" and campaign.period == "2026-11-27"
    assert campaign.deadline_at == dt.datetime(2026, 12, 4, 18, 0, tzinfo=SHANGHAI)
    assert [e.detail["campaign_id"] for e in await audits(bot, "campaign_open")] == [campaign.id]
    assert "今天已经为第一党支部发起过" in await ask(bot, dm(SECRETARY), SECRETARY, "发起 主题党日")

    await bot.say(study, ZHANG_SAN, "到")
    await bot.say(GROUP1, LI_SI, "请假 出差")
    stats = await ask(bot, dm(SECRETARY), SECRETARY, "统计 主题党日")
    assert "第一党支部：已填报 2/8" in stats, stats
    missing = await ask(bot, GROUP1, SECRETARY, "未交")  # the current whole-branch collection by default
    assert "主题党日签到" in missing and "张三" not in missing and "王五" in missing

    # deadlines: typed dates, bad dates, past dates; role-targeted forms go 1:1
    assert "截止日期没看懂" in await ask(bot, dm(SECRETARY), SECRETARY, "发起 志愿服务 2月30日")
    assert "已经过去了" in await ask(bot, dm(SECRETARY), SECRETARY, "发起 志愿服务 11月20日")
    assert "截止12月10日18:00" in await ask(bot, dm(SECRETARY), SECRETARY, "发起 志愿服务 12月10日")
    targeted = await ask(bot, dm(SECRETARY), SECRETARY, "发起 三会一课")
    assert "已私信通知书记、副书记、委员共2人" in targeted, targeted
    assert any("三会一课纪实" in t for t in bot_lines(await bot.transcript(dm("13800000002"))))  # 李红梅, 委员
    assert not any("三会一课" in t for t in bot_lines(await bot.transcript(GROUP1)))
    assert "请说明要发起哪一项收集" in await ask(bot, dm(SECRETARY), SECRETARY, "发起")


async def test_compliance_with_and_without_meeting_records(settings: Settings) -> None:
    clock = FakeClock(dt.datetime(2026, 9, 10, 10, 0, tzinfo=SHANGHAI))
    running = await start_bot(settings, clock)  # September dues
    try:
        for month, day in ((10, 12), (11, 27)):  # October and November dues; 王建国 never pays
            await running.say(dm(LI_SI), LI_SI, "已交")
            clock.set(dt.datetime(2026, month, day, 10, 0, tzinfo=SHANGHAI))
            await running.app.runner.start_current("dues", clock.now())
        without = await ask(running, dm(SECRETARY), SECRETARY, "达标")
        assert without.startswith("【2026年11月 组织生活达标情况】第一党支部"), without
        assert "✘ 支部委员会会议（每月）：11月尚未登记会议记录" in without
        assert "✘ 党小组会（每月）：第一党小组缺11月；第二党小组缺11月（本期尚未结束" in without
        assert "✘ 支部党员大会（每季度）：2026年第4季度尚未登记会议记录" in without
        assert "✘ 党课（每季度）" in without and "✘ 主题党日（每月）" in without
        assert "✔ 会议记录完整：本期暂无会议记录" in without
        assert re.search(r"✘ 连续欠交党费（3个月及以上）：\d+人连续未交.*王建国（3个月）", without), without
        assert "李四" not in without.split("连续欠交")[1]  # paid September and October: 1 month unpaid

        await ask(running, dm(SECRETARY), SECRETARY, "发起 三会一课")
        saved = await ask(
            running, dm(SECRETARY), SECRETARY,
            "三会一课 支委会，11月20日，三楼会议室，王建国，学习党章，王建国、李红梅，决议：同意发展张三为积极分子",
        )  # fmt: skip
        assert "已登记" in saved, saved
        await ask(running, dm("13800000002"), "13800000002",  # 李红梅 (委员) records a general meeting, no absentees
                  "三会一课 党员大会，11月25日，会议室，王建国，学习党章，王建国、李红梅、张三")  # fmt: skip
        with_records = await ask(running, dm(SECRETARY), SECRETARY, "达标 2026-11")
        assert "✔ 支部委员会会议（每月）：11月已召开并登记（11月20日）" in with_records, with_records
        assert "✔ 支部党员大会（每季度）：2026年第4季度已召开并登记（11月25日）" in with_records
        assert "✘ 会议记录完整：1/2条记录缺项：11月25日支部党员大会缺缺席人员及原因、会议决议" in with_records

        quarter = await ask(running, dm(SECRETARY), SECRETARY, "达标 2026-Q4")
        assert "支部委员会会议（每月）：已召开 1/2，缺10月" in quarter, quarter

        in_group = await ask(running, GROUP1, SECRETARY, "达标")
        assert "王建国（3个月）" not in in_group and "私聊" in in_group  # names of people in arrears stay 1:1

        overview = await ask(running, dm(ADMIN), ADMIN, "达标")
        assert "共2个支部" in overview
        assert re.search(r"第二党支部：达标 \d+/\d+ 项，✘ 支部委员会会议", overview), overview
        assert "第一党支部" in overview and "✘ 支部委员会会议" not in overview.split("第一党支部")[1].split("\n")[0]
    finally:
        await stop_bot(running)


async def test_stats_ranking_money_and_calendar_warning(bot: Running) -> None:
    await bot.say(GROUP1, ZHANG_SAN, "党费 45")
    await bot.say(GROUP1, WANG_WU, "党费 240")
    await bot.say(GROUP2, "13800000012", "党费 78")  # 周强
    await bot.say(dm(SECRETARY2), SECRETARY2, "党费 135")  # 孙丽
    admin = await ask(bot, dm(ADMIN), ADMIN, "统计")
    lines = admin.splitlines()
    assert lines[0].startswith("【党费】各支部填报统计（2个支部")
    assert lines[1] == "1. 第二党支部：已填报 2/4（50%），合计 213.00 元"
    assert lines[2] == "2. 第一党支部：已填报 2/8（25%），合计 285.00 元"
    assert lines[3] == "合计：已填报 4/12（33%），合计 498.00 元"
    assert "节假日数据尚未覆盖2027年" in admin  # chinesecalendar 1.11 ends with 2026
    secretary = await ask(bot, dm(SECRETARY), SECRETARY, "统计 党费 2026-11")
    assert "第一党支部：已填报 2/8（25%），合计 285.00 元" in secretary and "节假日" not in secretary
    assert "暂无党费的收集记录" in await ask(bot, dm(SECRETARY), SECRETARY, "统计 党费 2026-10")
    assert "看不懂" in await ask(bot, dm(SECRETARY), SECRETARY, "统计 2026-13")

    # money never reaches a group: stats, export and remind in the group carry no amounts
    for sender, text in ((ADMIN, "统计"), (SECRETARY, "统计 党费"), (SECRETARY, "导出"), (SECRETARY, "提醒")):
        data = await bot.say(GROUP1, sender, text)
        for reply in data["replies"]:
            if reply["conversation_id"] == GROUP1:
                assert not MONEY_RE.search(reply["text"]), reply
    for line in bot_lines(await bot.transcript(GROUP1)):
        assert not MONEY_RE.search(re.sub(r"^(@\S+\s*)+", "", line)), line
        assert "[文件]" not in line
    assert any("[文件]" in t for t in bot_lines(await bot.transcript(dm(SECRETARY))))
