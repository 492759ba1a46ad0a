"""Forms end to end, what members really do in a dialogue: answer a question with another form's
keyword, come back after the session expired, pick a namesake by number, answer `请假` in parts,
write `请假 到…` for the theme day. Through the HTTP API, checked in the database.
"""

from __future__ import annotations

import datetime as dt

from bot.clock import FakeClock
from tests.conftest import Running
from tests.test_forms_e2e_support import (
    COMMITTEE,
    GROUP1,
    add_member,
    answer_of,
    answers,
    assert_group_private,
    assert_rejection,
    dm,
    dues_campaign,
    joined,
    member_id,
    open_form,
    say,
    texts,
)


async def test_another_forms_answer_in_the_middle_of_a_dialogue(bot: Running) -> None:
    volunteer = await open_form(bot, "volunteer", "11月志愿服务")
    theme = await open_form(bot, "theme_day", "11月主题党日")
    dues = await dues_campaign(bot)

    data = await say(bot, GROUP1, "张三", "志愿服务")
    assert "请输入服务日期" in joined(data)
    # A complete answer to another form is saved, and the question is asked again.
    data = await say(bot, GROUP1, "张三", "到")
    assert texts(data) == ["已登记：11月主题党日 — 到", "继续填报“11月志愿服务”：请输入服务日期，例如：11月15日。"]
    assert (await answer_of(bot, theme, "张三")).values["attendance"]["status"] == "present"  # type: ignore[union-attr]
    await say(bot, GROUP1, "张三", "11月21日")
    # Even where any text would do (服务内容), a complete dues answer is not taken as the content.
    data = await say(bot, GROUP1, "张三", "党费 45")
    assert texts(data, GROUP1)[0] == "已登记“11月党费收缴”，详情已私信。"
    assert "继续填报“11月志愿服务”：请输入服务内容" in joined(data, GROUP1)
    assert (await answer_of(bot, dues, "张三")).amount_fen == 4500  # type: ignore[union-attr]
    await say(bot, GROUP1, "张三", "社区义诊引导")
    await say(bot, GROUP1, "张三", "2小时")
    assert (await answer_of(bot, volunteer, "张三")).values == {  # type: ignore[union-attr]
        "date": "2026-11-21", "activity": "社区义诊引导", "hours": "2",
    }  # fmt: skip

    # A keyword that starts another dialogue replaces the unfinished one (and says so).
    await say(bot, dm("李四"), "李四", "志愿服务")
    data = await say(bot, dm("李四"), "李四", "请假")
    assert texts(data) == ["请说明请假原因，例如：请假 出差。", "未完成的“11月志愿服务”已放弃，没有保存。"]
    data = await say(bot, dm("李四"), "李四", "出差")
    assert texts(data) == ["已登记：11月主题党日 — 请假（出差）"]
    assert await answer_of(bot, volunteer, "李四") is None

    # A proxy answer by the secretary in the middle of his own dialogue.
    await say(bot, dm("王建国"), "王建国", "志愿服务 11月22日")
    data = await say(bot, dm("王建国"), "王建国", "代 陈七 已交")
    assert texts(data)[0].startswith("已为陈七登记：11月党费收缴")
    assert texts(data)[-1] == "继续填报“11月志愿服务”：请输入服务内容，例如：社区环境整治。"
    await say(bot, dm("王建国"), "王建国", "植树")
    await say(bot, dm("王建国"), "王建国", "半小时")
    assert (await answer_of(bot, volunteer, "王建国")).values["hours"] == "0.5"  # type: ignore[union-attr]
    assert (await answer_of(bot, dues, "陈七")).entered_by == await member_id(bot, "王建国")  # type: ignore[union-attr]
    await assert_group_private(bot, 45)


async def test_an_expired_dialogue_is_not_continued(bot: Running, clock: FakeClock) -> None:
    volunteer = await open_form(bot, "volunteer", "11月志愿服务")
    await say(bot, dm("张三"), "张三", "志愿服务")
    await say(bot, dm("张三"), "张三", "昨天")
    clock.advance(dt.timedelta(minutes=29))
    data = await say(bot, dm("张三"), "张三", "打扫楼道")  # within 30 minutes of the last reply
    assert texts(data) == ["请输入服务时长（小时），例如：2.5。"]

    clock.advance(dt.timedelta(minutes=31))
    data = await say(bot, dm("张三"), "张三", "2小时")
    reply = joined(data)
    assert reply == "“11月志愿服务”的填报（60分钟前开始）已超过30分钟未回复，没有保存，请重新回复，例如：志愿服务（按提示逐项回复）。"
    assert_rejection(reply)
    assert await answers(bot, campaign_id=volunteer) == []
    # Nothing lingers: the next plain reply is not read into the old dialogue, a keyword starts afresh.
    data = await say(bot, dm("张三"), "张三", "2小时")
    assert "没有看懂这条消息" in joined(data)
    data = await say(bot, dm("张三"), "张三", "志愿服务 昨天 打扫楼道 2小时")
    assert "已登记" in joined(data)
    assert (await answer_of(bot, volunteer, "张三")).values["date"] == "2026-11-26"  # type: ignore[union-attr]

    # After expiry a keyword is simply answered (no notice needed).
    await say(bot, dm("李四"), "李四", "志愿服务")
    clock.advance(dt.timedelta(hours=2))
    data = await say(bot, dm("李四"), "李四", "党费 15")
    assert texts(data) == ["已登记：11月党费收缴 — 15.00元"]
    data = await say(bot, dm("李四"), "李四", "取消")
    assert texts(data) == ["当前没有进行中的填报，无需取消。"]
    await assert_group_private(bot, 15)


async def test_a_number_picks_a_namesake(bot: Running) -> None:
    second = await add_member(bot, "张三", "13800000009", "第二党小组", 6000)
    first = await member_id(bot, "张三", "13800000003")
    meeting = await open_form(bot, "meeting", "11月支委会纪实", roles=COMMITTEE)
    dues = await dues_campaign(bot)

    # One line with an ambiguous name: the rest is kept, the namesakes are listed with numbers.
    record = "会议记录 类型：党员大会；日期：11月25日；地点：会议室；主持人：王建国；议题：党章；参会人员：李四、张三、王五"
    data = await say(bot, dm("王建国"), "王建国", record)
    question = joined(data)
    assert question.startswith("名单中有2位“张三”，请确认是哪一位。\n")
    assert "1. 张三（第一党小组，手机尾号0003）" in question and "2. 张三（第二党小组，手机尾号0009）" in question
    data = await say(bot, dm("王建国"), "王建国", "2")
    assert "已登记：11月支委会纪实" in joined(data)
    row = await answer_of(bot, meeting, "王建国")
    assert row is not None
    attendees = [(m["member_id"], m["name"]) for m in row.values["attendees"]]
    assert attendees == [(await member_id(bot, "李四"), "李四"), (second, "张三"), (await member_id(bot, "王五"), "王五")]

    # Step by step, "全体除张三": the chosen one is left out, the other 张三 still counted.
    await say(bot, GROUP1, "李红梅", "会议记录")
    for text in ("支委会", "11月26日", "三楼", "李红梅", "讨论发展党员"):
        await say(bot, GROUP1, "李红梅", text)
    data = await say(bot, GROUP1, "李红梅", "全体除张三")
    assert "名单中有2位“张三”" in joined(data)
    data = await say(bot, GROUP1, "李红梅", "第一个")
    assert "请输入缺席人员及原因" in joined(data)
    await say(bot, GROUP1, "李红梅", "张三（出差）")
    await say(bot, GROUP1, "李红梅", "无")
    row = await answer_of(bot, meeting, "李红梅")
    assert row is not None
    ids = [m["member_id"] for m in row.values["attendees"]]
    assert first not in ids and second in ids and len(ids) == 8

    # A proxy answer for an ambiguous name asks which one, too.
    data = await say(bot, GROUP1, "王建国", "代 张三 已交")
    assert joined(data).startswith("本支部有2位“张三”，请回复序号选择代谁登记：\n1. 张三（第一党小组")
    data = await say(bot, GROUP1, "王建国", "2")
    assert texts(data, GROUP1) == ["已为张三登记“11月党费收缴”，详情已私信。"]
    row = await answer_of(bot, dues, "张三", "13800000009")
    assert row is not None and (row.amount_fen, row.entered_by) == (9000, await member_id(bot, "王建国"))
    assert await answer_of(bot, dues, "张三", "13800000003") is None
    await assert_group_private(bot, 6000, 90)


async def test_leave_words_for_the_theme_day(bot: Running) -> None:
    theme = await open_form(bot, "theme_day", "11月主题党日")
    # "请假 到…" with no date is a theme-day leave, not a leave of absence until a date.
    data = await say(bot, GROUP1, "张三", "请假 到外地出差")
    assert texts(data) == ["已登记：11月主题党日 — 请假（到外地出差）"]
    # A leave of absence until a date is still the leave command.
    data = await say(bot, GROUP1, "李四", "请假 至 12月20日 住院")
    assert "已登记请假至12月20日" in joined(data)
    assert await answer_of(bot, theme, "李四") is None

    # 请假 then 到 (changed their mind), and an unhelpful reason answer re-asked in one sentence.
    await say(bot, GROUP1, "王五", "请假")
    data = await say(bot, GROUP1, "王五", "到")
    assert texts(data) == ["已登记：11月主题党日 — 到"]
    await say(bot, GROUP1, "赵六", "请假")
    data = await say(bot, GROUP1, "赵六", "。。。")
    assert_rejection(joined(data))
    await say(bot, GROUP1, "赵六", "单位值班")
    assert (await answer_of(bot, theme, "赵六")).values["attendance"]["reason"] == "单位值班"  # type: ignore[union-attr]
    await assert_group_private(bot)


async def test_an_answer_that_is_also_a_keyword_stays_in_the_dialogue(bot: Running) -> None:
    """`线上` is the theme day's keyword, but as the meeting place it is just the place."""
    meeting = await open_form(bot, "meeting", "11月支委会纪实", roles=COMMITTEE)
    theme = await open_form(bot, "theme_day", "11月主题党日")
    for text in ("会议记录", "支委会", "11月25日"):
        await say(bot, dm("王建国"), "王建国", text)
    data = await say(bot, dm("王建国"), "王建国", "线上")
    assert texts(data) == ["请输入主持人，例如：张三。"]
    for text in ("王建国", "学习党章", "全体", "无"):
        await say(bot, dm("王建国"), "王建国", text)
    data = await say(bot, dm("王建国"), "王建国", "志愿服务")  # the resolution, not a form
    assert "已登记：11月支委会纪实" in joined(data)
    row = await answer_of(bot, meeting, "王建国")
    assert row is not None and (row.values["place"], row.values["resolutions"]) == ("线上", "志愿服务")
    assert await answer_of(bot, theme, "王建国") is None
    await assert_group_private(bot)
