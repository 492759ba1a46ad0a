"""A secretary's plain 未交 in one query (``current_roll``) agrees with the general path.

The general path picks the collection from the branch's recent campaigns in Python and counts its
audience in SQL (``branch_roll``); ``current_roll`` does the pick in SQL (the audience's JSON read per
dialect) and narrows the audience in Python. Both run here on the same data, on the backend under test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update

from bot.clock import SHANGHAI
from bot.db.campaigns import audience_admits
from bot.db.tables import Campaign, Member
from bot.reports.stats import (
    branch_roll,
    current_form_of,
    current_roll,
    recent_campaigns,
)
from tests.conftest import Running
from tests.test_forms_e2e_support import MOBILE, branch_id, dm, open_form

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
DAY = NOW.date()


async def general_path(bot: Running, org_id: int, default_form: str) -> tuple[int, Any] | None:
    """What ``form_and_campaigns`` + ``campaign_summaries`` pick and count for one branch."""
    async with bot.app.sessions() as s:
        recent = await recent_campaigns(s, org_id, NOW)
        key = current_form_of(recent, NOW) or default_form
        latest = next((c for c in recent if c.form_key == key), None)
        if latest is None:
            return None
        return latest.id, await branch_roll(s, latest, DAY)


async def one_query(bot: Running, org_id: int, default_form: str) -> tuple[int, Any] | None:
    async with bot.app.sessions() as s:
        found = await current_roll(s, org_id, NOW, DAY, default_form)
    return None if found is None else (found[0].id, found[1])


async def assert_same(bot: Running, default_form: str = "dues") -> tuple[int, Any] | None:
    org_id = await branch_id(bot)
    expected = await general_path(bot, org_id, default_form)
    got = await one_query(bot, org_id, default_form)
    assert got == expected
    return got


async def set_audience(bot: Running, campaign_id: int, audience: Any) -> None:
    async with bot.app.sessions() as s, s.begin():
        await s.execute(update(Campaign).where(Campaign.id == campaign_id).values(audience=audience))


async def test_the_current_collection_and_its_roll(bot: Running) -> None:
    await bot.say(dm("张三"), MOBILE["张三"], "党费 45")
    await bot.say(dm("李四"), MOBILE["李四"], "请假 至 12月20日 出差")
    got = await assert_same(bot)
    assert got is not None
    roll = got[1]
    assert roll.counts.answered == 1 and "张三" not in roll.missing and "王五" in roll.missing
    assert roll.on_leave == ["李四"]


async def test_a_newer_role_task_does_not_hide_the_whole_branch_collection(bot: Running) -> None:
    theme = await open_form(bot, "theme_day", "主题党日签到")  # whole branch, opened after the dues
    task = await open_form(bot, "meeting_record", "支委会记录", roles=["书记"],
                           opened_at=NOW - dt.timedelta(minutes=5))  # fmt: skip
    got = await assert_same(bot)
    assert got is not None and got[0] == theme != task


async def test_role_and_category_audiences_are_narrowed_alike(bot: Running) -> None:
    # Only a role-targeted task is open; asked for it by form, both paths count its audience alone.
    past = NOW - dt.timedelta(days=40)
    async with bot.app.sessions() as s, s.begin():
        await s.execute(update(Campaign).values(deadline_at=past, opened_at=past - dt.timedelta(days=1)))
        await s.execute(update(Member).where(Member.name == "王五").values(category="离退休"))
    task = await open_form(bot, "meeting_record", "支委会记录", roles=["书记", "组织委员"])
    got = await assert_same(bot, default_form="meeting_record")
    assert got is not None and got[0] == task
    assert got[1].counts.total == 2  # 王建国 (书记), 李红梅 (组织委员)
    await set_audience(bot, task, {"categories": ["离退休"]})
    got = await assert_same(bot, default_form="meeting_record")
    assert got is not None and "王五" in got[1].missing and "王建国" not in got[1].missing


async def test_odd_audience_json_counts_as_the_whole_branch(bot: Running) -> None:
    theme = await open_form(bot, "theme_day", "主题党日签到", roles=["党员"])
    assert (await assert_same(bot))[0] != theme  # type: ignore[index]  # a role audience: not "current"
    for audience in ({}, {"roles": []}, {"roles": None, "categories": None}, {"categories": []}, None):
        await set_audience(bot, theme, audience)
        got = await one_query(bot, await branch_id(bot), "dues")
        assert got is not None
        if audience is None or not (audience.get("roles") or audience.get("categories")):
            assert got[0] == theme, audience  # nobody named: the whole branch, the current collection
        assert got == await general_path(bot, await branch_id(bot), "dues"), audience


async def test_no_collection_at_all(bot: Running) -> None:
    async with bot.app.sessions() as s, s.begin():
        await s.execute(update(Campaign).values(opened_at=NOW + dt.timedelta(days=1)))
    assert await assert_same(bot) is None
    reply = await bot.say(dm("王建国"), MOBILE["王建国"], "未交")
    assert "暂无“党费”的收集记录" in reply["replies"][0]["text"]


def test_audience_admits_matches_the_sql_filter_rules() -> None:
    assert audience_admits(None, ",党员,", "在职")
    assert audience_admits({"roles": ["书记"]}, ",书记,委员,", "在职")
    assert not audience_admits({"roles": ["书记"]}, ",副书记,", "在职")  # whole role names, as the LIKE ',书记,'
    assert not audience_admits({"categories": ["离退休"]}, ",党员,", "在职")
    assert audience_admits({"roles": ["党员"], "categories": ["在职"]}, ",党员,", "在职")
