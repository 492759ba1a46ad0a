"""Forms end to end (issue "Forms", must-show 2): every built-in form through the local chat's HTTP API,
one-line and step by step, plus cancel, 同上, corrections and late answers — checked in the database.

Group messages go in as if @-mentioning the bot; every test ends by scanning both group transcripts for
amounts and bases (``assert_group_private``). People, proxies, 我的 and the dialogue review are in
test_forms_e2e_people.py / test_forms_e2e_dialogue.py; the config-only donation form in
test_forms_e2e_donation.py.
"""

from __future__ import annotations

import datetime as dt

from bot.clock import SHANGHAI, FakeClock
from tests.conftest import Running
from tests.test_forms_e2e_support import (
    COMMITTEE,
    DUES_DEADLINE,
    EXPECTED,
    GROUP1,
    answer_of,
    answers,
    assert_group_private,
    assert_rejection,
    dm,
    dues_campaign,
    joined,
    member_id,
    open_form,
    revisions,
    say,
    texts,
)


async def test_dues_one_line_and_step_by_step(bot: Running) -> None:
    dues = await dues_campaign(bot)

    # One line in the group, as if @-mentioning the bot: the amount comes back only 1:1.
    data = await say(bot, GROUP1, "张三", "@党建助手 党费 45")
    assert texts(data, GROUP1) == ["已登记“11月党费收缴”，详情已私信。"]
    assert "45.00元" in joined(data, dm("张三"))
    row = await answer_of(bot, dues, "张三")
    assert row is not None
    assert (row.amount_fen, row.revision, row.flagged, row.late, row.platform) == (4500, 1, False, False, "local")
    assert row.entered_by == row.member_id == await member_id(bot, "张三")
    assert row.values == {"amount": 4500}

    # One line 1:1, with Chinese numerals.
    await say(bot, dm("赵六"), "赵六", "交党费 伍拾元")
    assert (await answer_of(bot, dues, "赵六")).amount_fen == 5000  # type: ignore[union-attr]

    # Step by step in the group: the question (with this member's expected amount) goes 1:1.
    data = await say(bot, GROUP1, "王五", "党费")
    assert texts(data, GROUP1) == ["“党费”的填报提示已私信您，请按提示回复（金额只在私聊中显示）。"]
    assert "应交党费240.00元" in joined(data, dm("王五"))
    assert await answer_of(bot, dues, "王五") is None
    data = await say(bot, GROUP1, "王五", "240")
    assert texts(data, GROUP1) == ["已登记“11月党费收缴”，详情已私信。"]
    row = await answer_of(bot, dues, "王五")
    assert row is not None and (row.amount_fen, row.flagged) == (24000, False)

    # Step by step 1:1, with a wrong answer first: one sentence with an example, nothing stored.
    data = await say(bot, dm("李四"), "李四", "缴纳党费")
    assert "应交党费15.00元" in joined(data) and "请输入本月交纳的党费金额" in joined(data)
    data = await say(bot, dm("李四"), "李四", "十五块钱吧")
    assert_rejection(joined(data))
    assert await answer_of(bot, dues, "李四") is None
    data = await say(bot, dm("李四"), "李四", "15元")
    assert "已登记：11月党费收缴 — 15.00元" in joined(data)
    assert (await answer_of(bot, dues, "李四")).amount_fen == 1500  # type: ignore[union-attr]

    await assert_group_private(bot, 45, 240, 15, 50)


async def test_theme_day_attendance_one_line_and_step_by_step(bot: Running) -> None:
    theme = await open_form(bot, "theme_day", "11月主题党日")
    dues = await dues_campaign(bot)

    # `到` in the group selects the theme day although the dues campaign is open too.
    data = await say(bot, GROUP1, "张三", "@党建助手 到")
    assert texts(data) == ["已登记：11月主题党日 — 到"]
    assert (await answer_of(bot, theme, "张三")).values == {"attendance": {"status": "present", "reason": ""}}  # type: ignore[union-attr]
    assert await answers(bot, campaign_id=dues) == []

    await say(bot, dm("李四"), "李四", "线上")
    await say(bot, GROUP1, "陈七", "请假 出差")
    assert (await answer_of(bot, theme, "李四")).values["attendance"]["status"] == "online"  # type: ignore[union-attr]
    assert (await answer_of(bot, theme, "陈七")).values["attendance"] == {"status": "leave", "reason": "出差"}  # type: ignore[union-attr]

    # `请假` alone asks for the reason; the next reply is the reason.
    data = await say(bot, GROUP1, "刘洋", "请假")
    assert texts(data) == ["请说明请假原因，例如：请假 出差。"]
    assert await answer_of(bot, theme, "刘洋") is None
    data = await say(bot, GROUP1, "刘洋", "家里有事")
    assert texts(data) == ["已登记：11月主题党日 — 请假（家里有事）"]
    assert (await answer_of(bot, theme, "刘洋")).values["attendance"] == {"status": "leave", "reason": "家里有事"}  # type: ignore[union-attr]

    # The form's keyword alone, then the answer.
    data = await say(bot, dm("王五"), "王五", "主题党日")
    assert texts(data) == ["请回复：到、线上 或 请假加原因，例如：请假 出差。"]
    data = await say(bot, dm("王五"), "王五", "线上参加")
    assert texts(data) == ["已登记：11月主题党日 — 线上参加"]

    assert len(await answers(bot, campaign_id=theme)) == 5
    assert await answers(bot, campaign_id=dues) == []
    await assert_group_private(bot)


async def test_meeting_record_secretary_only(bot: Running) -> None:
    meeting = await open_form(bot, "meeting", "11月支委会纪实", roles=COMMITTEE)

    # One line (several lines of one message) by the secretary, 1:1.
    record = "会议记录\n类型：支委会\n日期：11月25日\n地点：三楼会议室\n主持人：王建国\n议题：学习党章\n参会人员：王建国、李红梅\n缺席：无"
    data = await say(bot, dm("王建国"), "王建国", record)
    assert "已登记：11月支委会纪实" in joined(data)
    row = await answer_of(bot, meeting, "王建国")
    assert row is not None
    assert row.values["meeting_type"] == "branch_committee"
    assert row.values["date"] == "2026-11-25"
    assert row.values["place"] == "三楼会议室"
    assert [m["name"] for m in row.values["attendees"]] == ["王建国", "李红梅"]
    assert row.values["attendees"][1]["member_id"] == await member_id(bot, "李红梅")

    # Step by step by a committee member in the group; optional fields skipped with 无.
    steps = [
        ("三会一课", "开始填报“11月支委会纪实”，共8项"),
        ("党小组会", "请输入会议日期"),
        ("昨天", "请输入会议地点"),
        ("活动室", "请输入主持人"),
        ("李红梅", "请输入会议议题"),
        ("学习二十大精神", "请输入参会人员"),
        ("全体", "请输入缺席人员及原因"),
        ("无", "请输入会议决议"),
    ]
    for text, expected in steps:
        data = await say(bot, GROUP1, "李红梅", text)
        assert expected in joined(data), (text, data)
        assert await answer_of(bot, meeting, "李红梅") is None
    data = await say(bot, GROUP1, "李红梅", "不填")
    assert "已登记：11月支委会纪实" in joined(data)
    row = await answer_of(bot, meeting, "李红梅")
    assert row is not None
    assert row.values["meeting_type"] == "group" and row.values["date"] == "2026-11-26"
    assert len(row.values["attendees"]) == 8
    assert row.values["absentees"] is None and row.values["resolutions"] is None

    # A plain member is told politely that the secretary's side fills it in.
    data = await say(bot, GROUP1, "张三", "会议记录 支委会")
    assert texts(data) == ["“三会一课纪实”由书记、副书记、委员填报，您无需填报（查看自己的记录可发送“我的”）。"]
    assert len(await answers(bot, campaign_id=meeting)) == 2
    await assert_group_private(bot)


async def test_work_log_by_the_liaison_officer(bot: Running, clock: FakeClock) -> None:
    log = await open_form(bot, "work_log", "11月27日工作日志", period="2026-11-27", roles=["联络员"])

    data = await say(bot, dm("赵六"), "赵六", "工作日志 今天 某某科技有限公司 督导复工复产防控措施")
    assert "已登记：11月27日工作日志" in joined(data)
    row = await answer_of(bot, log, "赵六")
    assert row is not None
    assert row.values == {"date": "2026-11-27", "enterprise": "某某科技有限公司", "work": "督导复工复产防控措施"}

    # Next day, step by step in the group, the optional questions answered or skipped.
    clock.advance(dt.timedelta(days=1))
    nxt = await open_form(
        bot, "work_log", "11月28日工作日志", period="2026-11-28", roles=["联络员"],
        opened_at=dt.datetime(2026, 11, 28, 8, 0, tzinfo=SHANGHAI),
        deadline_at=dt.datetime(2026, 11, 28, 20, 0, tzinfo=SHANGHAI),
    )  # fmt: skip
    for text in ("日志", "今天", "某某食品厂", "检查消毒台账", "协调口罩500个"):
        assert await answer_of(bot, nxt, "赵六") is None
        await say(bot, GROUP1, "赵六", text)
    data = await say(bot, GROUP1, "赵六", "没有")
    assert "已登记：11月28日工作日志" in joined(data)
    row = await answer_of(bot, nxt, "赵六")
    assert row is not None
    assert row.values == {
        "date": "2026-11-28", "enterprise": "某某食品厂", "work": "检查消毒台账",
        "solved": "协调口罩500个", "open_issues": None,
    }  # fmt: skip

    # Not for other members.
    data = await say(bot, GROUP1, "张三", "工作日志 今天 某厂 走访")
    assert texts(data) == ["目前没有需要您填报的“工作日志”（查看已登记的记录可发送“我的”）。"]
    assert len(await answers(bot, form_key="work_log")) == 2
    await assert_group_private(bot)


async def test_volunteer_one_line_and_step_by_step(bot: Running) -> None:
    volunteer = await open_form(bot, "volunteer", "11月志愿服务")

    data = await say(bot, GROUP1, "张三", "志愿服务 11月20日 社区环境整治 2小时")
    assert texts(data) == ["已登记：11月志愿服务 — 服务日期：2026年11月20日；服务内容：社区环境整治；服务时长（小时）：2小时"]
    assert (await answer_of(bot, volunteer, "张三")).values == {  # type: ignore[union-attr]
        "date": "2026-11-20", "activity": "社区环境整治", "hours": "2",
    }  # fmt: skip

    data = await say(bot, dm("李四"), "李四", "志愿")
    assert "共3项" in joined(data) and "请输入服务日期" in joined(data)
    await say(bot, dm("李四"), "李四", "昨天")
    await say(bot, dm("李四"), "李四", "敬老院陪护")
    data = await say(bot, dm("李四"), "李四", "30小时")
    assert_rejection(joined(data))
    data = await say(bot, dm("李四"), "李四", "一个半小时")
    assert "已登记" in joined(data)
    assert (await answer_of(bot, volunteer, "李四")).values == {  # type: ignore[union-attr]
        "date": "2026-11-26", "activity": "敬老院陪护", "hours": "1.5",
    }  # fmt: skip

    # One line with only part of it: the rest is asked.
    data = await say(bot, GROUP1, "王五", "志愿服务 11月21日 植树")
    assert texts(data) == ["请输入服务时长（小时），例如：2.5。"]
    await say(bot, GROUP1, "王五", "3个小时")
    assert (await answer_of(bot, volunteer, "王五")).values["hours"] == "3"  # type: ignore[union-attr]
    await assert_group_private(bot)


async def test_cancel_mid_way_stores_nothing(bot: Running) -> None:
    meeting = await open_form(bot, "meeting", "11月支委会纪实", roles=COMMITTEE)
    for text in ("会议记录", "支委会", "11月25日"):
        await say(bot, GROUP1, "王建国", text)
    data = await say(bot, GROUP1, "王建国", "取消")
    assert texts(data) == ["已取消本次填报，没有保存任何内容。"]
    assert await answers(bot, campaign_id=meeting) == []
    # The dialogue is over: the next message is not read as the meeting place.
    data = await say(bot, GROUP1, "王建国", "三楼会议室")
    assert "没有看懂这条消息" in joined(data)
    assert await answers(bot, campaign_id=meeting) == []
    data = await say(bot, GROUP1, "王建国", "取消")
    assert texts(data) == ["当前没有进行中的填报，无需取消。"]

    # Cancelling a dues question: nothing stored either.
    await say(bot, dm("张三"), "张三", "党费")
    await say(bot, dm("张三"), "张三", "取消")
    assert await answers(bot, form_key="dues") == []
    await assert_group_private(bot)


async def test_same_as_before_repeats_the_last_answer_in_a_new_campaign(bot: Running, clock: FakeClock) -> None:
    nov_theme = await open_form(bot, "theme_day", "11月主题党日")
    nov_volunteer = await open_form(bot, "volunteer", "11月志愿服务")
    await say(bot, GROUP1, "张三", "请假 出差")
    await say(bot, GROUP1, "张三", "党费 45")
    await say(bot, dm("张三"), "张三", "志愿服务 11月20日 社区环境整治 2小时")
    data = await say(bot, GROUP1, "李四", "同上")  # nothing to repeat yet
    assert_rejection(joined(data))

    clock.set(dt.datetime(2026, 12, 20, 9, 0, tzinfo=SHANGHAI))
    dec = {"opened_at": clock.now(), "deadline_at": dt.datetime(2026, 12, 25, 18, 0, tzinfo=SHANGHAI), "period": "2026-12"}
    dec_theme = await open_form(bot, "theme_day", "12月主题党日", **dec)  # type: ignore[arg-type]
    dec_dues = await open_form(bot, "dues", "12月党费收缴", **dec)  # type: ignore[arg-type]
    dec_volunteer = await open_form(bot, "volunteer", "12月志愿服务", **dec)  # type: ignore[arg-type]

    data = await say(bot, GROUP1, "张三", "主题党日 同上")
    assert texts(data) == ["已登记：12月主题党日 — 请假（出差）"]
    assert (await answer_of(bot, dec_theme, "张三")).values == (await answer_of(bot, nov_theme, "张三")).values  # type: ignore[union-attr]

    data = await say(bot, dm("张三"), "张三", "党费 同上")
    assert "已登记：12月党费收缴 — 45.00元" in joined(data)
    row = await answer_of(bot, dec_dues, "张三")
    assert row is not None and (row.amount_fen, row.flagged) == (4500, False)

    # A date is not copied from last time: it is asked again, the rest is repeated.
    data = await say(bot, dm("张三"), "张三", "同上")
    assert texts(data) == ["其余各项已按上次填写，请输入服务日期，例如：11月15日。"]
    await say(bot, dm("张三"), "张三", "昨天")
    row = await answer_of(bot, dec_volunteer, "张三")
    assert row is not None
    assert row.values == {"date": "2026-12-19", "activity": "社区环境整治", "hours": "2"}
    assert (await answer_of(bot, nov_volunteer, "张三")).values["date"] == "2026-11-20"  # type: ignore[union-attr]
    await assert_group_private(bot, 45)


async def test_correction_before_the_deadline_is_a_new_revision(bot: Running) -> None:
    dues = await dues_campaign(bot)
    theme = await open_form(bot, "theme_day", "11月主题党日")
    await say(bot, GROUP1, "张三", "党费 45")
    data = await say(bot, GROUP1, "张三", "党费 60")
    assert texts(data, GROUP1) == ["已更新（第2次提交，以此为准）“11月党费收缴”，详情已私信。"]
    assert "已更新" in joined(data, dm("张三")) and "60.00元" in joined(data, dm("张三"))
    rows = await answers(bot, campaign_id=dues)
    assert len(rows) == 1
    row = rows[0]
    assert (row.revision, row.amount_fen, row.flagged, row.late) == (2, 6000, True, False)
    assert row.flag_note == "应交45.00元，实交60.00元"
    revs = await revisions(bot, row.id)
    assert [(r.revision, r.values) for r in revs] == [(1, {"amount": 4500}), (2, {"amount": 6000})]
    assert {r.entered_by for r in revs} == {row.member_id}

    # Attendance changed from 到 to 请假 before the theme day's deadline.
    await say(bot, dm("李四"), "李四", "到")
    data = await say(bot, dm("李四"), "李四", "请假 孩子生病")
    assert texts(data) == ["已更新（第2次提交，以此为准）：11月主题党日 — 请假（孩子生病）"]
    row = await answer_of(bot, theme, "李四")
    assert row is not None and row.revision == 2
    assert [r.values["attendance"]["status"] for r in await revisions(bot, row.id)] == ["present", "leave"]
    await assert_group_private(bot, 45, 60)


async def test_late_answer_is_stored_and_marked_late(bot: Running, clock: FakeClock) -> None:
    dues = await dues_campaign(bot)
    theme = await open_form(bot, "theme_day", "11月主题党日")
    await say(bot, GROUP1, "张三", "到")  # on time

    clock.set(DUES_DEADLINE + dt.timedelta(minutes=1))
    data = await say(bot, GROUP1, "李四", "已交")
    assert texts(data, GROUP1) == ["已登记“11月党费收缴”（已过截止时间，记为逾期补交），详情已私信。"]
    assert "逾期补交" in joined(data, dm("李四"))
    row = await answer_of(bot, dues, "李四")
    assert row is not None and (row.amount_fen, row.late, row.flagged) == (EXPECTED["李四"], True, False)

    data = await say(bot, GROUP1, "王五", "请假 出差")
    assert texts(data) == ["已登记：11月主题党日 — 请假（出差）（已过截止时间，记为逾期补交）"]
    assert (await answer_of(bot, theme, "王五")).late is True  # type: ignore[union-attr]
    assert (await answer_of(bot, theme, "张三")).late is False  # type: ignore[union-attr]
    await assert_group_private(bot)
