"""Forms end to end, who answers for whom (issue "Forms", must-show 2): proxy answers and who may give
them, 我的, the same member in the group and 1:1 at once, several open campaigns, dues confirmations and
flags, and the wording of rejections. Checked in the database; group transcripts scanned for amounts.
"""

from __future__ import annotations

import datetime as dt

from bot.clock import SHANGHAI
from tests.conftest import Running
from tests.test_forms_e2e_support import (
    COMMITTEE,
    EXPECTED,
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
    open_form,
    revisions,
    say,
    texts,
)


async def test_secretary_answers_for_a_member(bot: Running) -> None:
    dues = await dues_campaign(bot)
    data = await say(bot, GROUP1, "王建国", "代 张三 党费 50")
    assert texts(data, GROUP1) == ["已为张三登记“11月党费收缴”，详情已私信。"]
    assert "已为张三登记：11月党费收缴 — 50.00元" in joined(data, dm("王建国"))
    assert "应交45.00元，实交50.00元" in joined(data, dm("王建国"))

    row = await answer_of(bot, dues, "张三")
    assert row is not None
    assert row.member_id == await member_id(bot, "张三")
    assert row.entered_by == await member_id(bot, "王建国")
    assert (row.amount_fen, row.flagged, row.revision) == (5000, True, 1)
    assert [r.entered_by for r in await revisions(bot, row.id)] == [row.entered_by]
    assert await answer_of(bot, dues, "王建国") is None

    # 张三 hears about it 1:1, with the amount.
    note = bot_lines(await bot.transcript(dm("张三")))
    assert note == ["王建国已代您登记：11月党费收缴 — 50.00元，如有出入请直接回复更正。"]

    # Without a space after the name, and a bare 已交 confirms the member's own expected amount.
    theme = await open_form(bot, "theme_day", "11月主题党日")
    await say(bot, dm("王建国"), "王建国", "代李四请假 出差")
    assert (await answer_of(bot, theme, "李四")).values["attendance"] == {"status": "leave", "reason": "出差"}  # type: ignore[union-attr]
    await say(bot, dm("王建国"), "王建国", "代 李四 已交")
    assert (await answer_of(bot, dues, "李四")).amount_fen == EXPECTED["李四"]  # type: ignore[union-attr]
    await assert_group_private(bot, 50, 45)


async def test_plain_member_cannot_answer_for_others(bot: Running) -> None:
    data = await say(bot, GROUP1, "李四", "代 张三 党费 50")
    assert texts(data) == ["抱歉，只有支部书记、副书记、组织委员或党小组长可以代他人登记，您本人的情况请直接回复，例如：已交。"]
    assert_rejection(texts(data)[0])
    assert await answers(bot, form_key="dues") == []
    await assert_group_private(bot, 50)


async def test_group_leader_answers_only_within_their_party_group(bot: Running) -> None:
    dues = await dues_campaign(bot)
    # 王五 leads 第二党小组 (赵六, 陈七, 刘洋); 张三 is in 第一党小组.
    data = await say(bot, GROUP1, "王五", "代 陈七 已交")
    assert texts(data, GROUP1) == ["已为陈七登记“11月党费收缴”，详情已私信。"]
    row = await answer_of(bot, dues, "陈七")
    assert row is not None
    assert (row.amount_fen, row.entered_by) == (EXPECTED["陈七"], await member_id(bot, "王五"))

    data = await say(bot, GROUP1, "王五", "代 张三 党费 50")
    assert texts(data) == ["张三不在您的党小组，党小组长只能代本小组党员登记，例如：代 赵六 已交。"]
    assert_rejection(texts(data)[0])
    data = await say(bot, GROUP1, "王五", "代 张飞 党费 50")
    assert texts(data) == ["本支部名册中没有“张飞”，请核对姓名，例如：代 赵六 已交。"]
    assert await answer_of(bot, dues, "张三") is None

    # The organisation committee member (组织委员) may answer for the whole branch.
    await say(bot, GROUP1, "李红梅", "代 张三 已交")
    row = await answer_of(bot, dues, "张三")
    assert row is not None and row.entered_by == await member_id(bot, "李红梅")
    assert "李红梅已代您登记" in bot_lines(await bot.transcript(dm("张三")))[0]
    await assert_group_private(bot, 50)


async def test_me_lists_own_records_and_goes_private_from_the_group(bot: Running) -> None:
    await open_form(bot, "theme_day", "11月主题党日")
    data = await say(bot, GROUP1, "张三", "我的")
    assert texts(data, GROUP1) == ["已私信回复您。"]
    assert "还没有任何登记记录" in joined(data, dm("张三"))

    await say(bot, GROUP1, "张三", "党费 60")
    await say(bot, GROUP1, "张三", "请假 出差")
    await say(bot, GROUP1, "王建国", "代 李四 党费 15")
    data = await say(bot, GROUP1, "张三", "@党建助手 我的")
    assert texts(data, GROUP1) == ["您的记录已私信发送。"]
    mine = joined(data, dm("张三"))
    assert "张三的最近记录" in mine
    assert "11月党费收缴：60.00元（待核对）" in mine
    assert "11月主题党日：请假（出差）" in mine
    assert "李四" not in mine  # only one's own records

    data = await say(bot, dm("李四"), "李四", "/me")
    assert "11月党费收缴：15.00元（王建国代登记）" in joined(data)
    await assert_group_private(bot, 60, 15)


async def test_group_and_private_dialogues_run_side_by_side(bot: Running) -> None:
    """Sessions are per conversation: one dialogue 1:1 and another in the group, interleaved."""
    meeting = await open_form(bot, "meeting", "11月支委会纪实", roles=COMMITTEE)
    theme = await open_form(bot, "theme_day", "11月主题党日")
    dues = await dues_campaign(bot)

    await say(bot, dm("王建国"), "王建国", "会议记录")
    await say(bot, dm("王建国"), "王建国", "支委会")
    data = await say(bot, GROUP1, "王建国", "请假")
    assert texts(data) == ["请说明请假原因，例如：请假 出差。"]
    data = await say(bot, dm("王建国"), "王建国", "11月25日")
    assert texts(data) == ["请输入会议地点，例如：三楼会议室。"]
    data = await say(bot, GROUP1, "王建国", "区里开会")
    assert texts(data) == ["已登记：11月主题党日 — 请假（区里开会）"]
    for text in ("三楼会议室", "王建国", "研究发展党员", "王建国、李红梅、张三", "无"):
        await say(bot, dm("王建国"), "王建国", text)
    data = await say(bot, dm("王建国"), "王建国", "同意接收张三为预备党员")
    assert "已登记：11月支委会纪实" in joined(data)
    assert (await answer_of(bot, meeting, "王建国")).values["date"] == "2026-11-25"  # type: ignore[union-attr]
    assert (await answer_of(bot, theme, "王建国")).values["attendance"]["reason"] == "区里开会"  # type: ignore[union-attr]

    # A dues question left open in the group is dropped once the member answers 1:1 instead.
    await say(bot, GROUP1, "张三", "党费")
    await say(bot, dm("张三"), "张三", "党费 45")
    data = await say(bot, GROUP1, "张三", "到")
    assert texts(data) == ["已登记：11月主题党日 — 到"]
    row = await answer_of(bot, dues, "张三")
    assert row is not None and (row.revision, row.amount_fen) == (1, 4500)
    await assert_group_private(bot, 45)


async def test_several_open_campaigns_ask_which_and_a_number_picks(bot: Running) -> None:
    nov = await dues_campaign(bot)
    oct_ = await open_form(
        bot, "dues", "10月党费收缴", period="2026-10",
        opened_at=dt.datetime(2026, 10, 8, 9, 0, tzinfo=SHANGHAI),
        deadline_at=dt.datetime(2026, 10, 30, 18, 0, tzinfo=SHANGHAI),
    )  # fmt: skip

    data = await say(bot, GROUP1, "张三", "45")
    question = texts(data)
    assert len(question) == 1
    assert question[0].startswith("您有2项待填报，这条回复是哪一项？请回复序号：\n1. 11月党费收缴")
    assert "\n2. 10月党费收缴" in question[0]
    assert await answers(bot, form_key="dues") == []
    data = await say(bot, GROUP1, "张三", "2")
    assert texts(data, GROUP1) == ["已登记“10月党费收缴”（已过截止时间，记为逾期补交），详情已私信。"]
    row = await answer_of(bot, oct_, "张三")
    assert row is not None and (row.amount_fen, row.late) == (4500, True)
    assert await answer_of(bot, nov, "张三") is None

    # With the keyword too; a wrong number is re-asked, "第一个" works.
    await say(bot, dm("李四"), "李四", "党费 15")
    data = await say(bot, dm("李四"), "李四", "5")
    assert texts(data) == ["请回复序号1到2，例如：1（回复“取消”放弃）。"]
    await say(bot, dm("李四"), "李四", "第一个")
    row = await answer_of(bot, nov, "李四")
    assert row is not None and (row.amount_fen, row.late) == (1500, False)

    # A proxy answer asks the same question about the member's open campaigns.
    data = await say(bot, GROUP1, "王建国", "代 王五 240")
    assert texts(data)[0].startswith("王五有2项待填报，这条回复是哪一项？")
    await say(bot, GROUP1, "王建国", "2")
    row = await answer_of(bot, oct_, "王五")
    assert row is not None
    assert (row.amount_fen, row.entered_by) == (24000, await member_id(bot, "王建国"))

    # A value that fits only one of the open forms goes there without a question.
    await open_form(bot, "theme_day", "11月主题党日")
    data = await say(bot, GROUP1, "王五", "线上")
    assert texts(data) == ["已登记：11月主题党日 — 线上参加"]
    await assert_group_private(bot, 45, 15, 240)


async def test_dues_confirmations_and_different_amounts(bot: Running) -> None:
    dues = await dues_campaign(bot)
    for name, text in (("张三", "已交"), ("陈七", "党费已交"), ("刘洋", "交了")):
        data = await say(bot, GROUP1, name, text)
        assert texts(data, GROUP1) == ["已登记“11月党费收缴”，详情已私信。"]
        row = await answer_of(bot, dues, name)
        assert row is not None and (row.amount_fen, row.flagged) == (EXPECTED[name], False), name
    assert "45.00元" in bot_lines(await bot.transcript(dm("张三")))[0]

    # A different amount is accepted and flagged for the secretary to check.
    for name, text in (("李四", "交了50"), ("王五", "已交50元"), ("赵六", "已交60")):
        data = await say(bot, GROUP1, name, text)
        assert "已标记请支部书记核对" in joined(data, dm(name))
        row = await answer_of(bot, dues, name)
        assert row is not None and row.flagged and row.amount_fen in (5000, 6000), name
    assert (await answer_of(bot, dues, "李四")).flag_note == "应交15.00元，实交50.00元"  # type: ignore[union-attr]

    # A large voluntary payment (1000 yuan or more) is flagged as 大额党费.
    await say(bot, dm("王建国"), "王建国", "党费 2000")
    row = await answer_of(bot, dues, "王建国")
    assert row is not None and row.flagged and "大额党费" in row.flag_note

    # /stats in the group: counts, no money; 1:1: the total.
    data = await say(bot, GROUP1, "王建国", "/stats")
    assert "7/8" in joined(data) and "元" not in joined(data)
    data = await say(bot, dm("王建国"), "王建国", "统计")
    assert "合计" in joined(data)
    await assert_group_private(bot, 50, 60, 2000, 45, 20)


async def test_rejections_are_one_short_sentence_with_an_example(bot: Running) -> None:
    await open_form(bot, "volunteer", "11月志愿服务")
    await open_form(bot, "meeting", "11月支委会纪实", roles=COMMITTEE)
    rejected = []
    for conv, name, text in [
        (dm("张三"), "张三", "党费 -50"),
        (dm("张三"), "张三", "党费 0"),
        (dm("张三"), "张三", "党费 3000000"),
        (dm("李四"), "李四", "志愿服务 2月30日 植树 2小时"),
        (dm("李四"), "李四", "取消"),
        (dm("李四"), "李四", "志愿服务 11月20日 植树 48小时"),
        (GROUP1, "王建国", "代 张三"),
        (GROUP1, "王建国", "代 张飞 党费 50"),
        (GROUP1, "刘洋", "代 张三 已交"),
        (GROUP1, "张三", "今天天气不错"),
        (dm("赵六"), "赵六", "同上"),
        (dm("赵六"), "赵六", "请假"),  # no theme day open
    ]:
        data = await say(bot, conv, name, text)
        if text == "取消":
            continue
        assert len(data["replies"]) == 1, (text, data)
        rejected.append(texts(data)[0])
    for reply in rejected:
        assert_rejection(reply)
    # Step by step: a wrong date and a name not on the roster.
    await say(bot, dm("王建国"), "王建国", "会议记录 支委会")
    data = await say(bot, dm("王建国"), "王建国", "13月5日")
    assert_rejection(joined(data))
    for text in ("11月25日", "三楼", "王建国", "党章"):
        await say(bot, dm("王建国"), "王建国", text)
    data = await say(bot, dm("王建国"), "王建国", "欧阳锋、李四")
    assert joined(data) == "名册中没有：欧阳锋，请核对姓名，用“、”分隔，例如：张三、李四。"
    assert_rejection(joined(data))
    assert await answers(bot) == []
    await assert_group_private(bot, 50)
