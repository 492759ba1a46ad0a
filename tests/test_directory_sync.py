"""`dangjian members sync dingtalk|wecom` over the fake directories, the pure matcher, and DingTalk
contact-change events prompting the secretary."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.clock import FakeClock
from bot.db.tables import Member
from bot.directory import RosterEntry, match_directory
from bot.directory_sync import run_sync
from bot.platforms.base import DirectoryUser
from tests.conftest import start_bot, stop_bot
from tests.fakes.dingtalk_server import FakeDingTalk
from tests.fakes.wecom_server import FakeUser, FakeWeCom


def entry(member_id: int, name: str, mobile: str | None = None, orgs: tuple[str, ...] = ("第一党支部",),
          current: str | None = None) -> RosterEntry:
    return RosterEntry(member_id, name, mobile, orgs, current)


def test_matcher_prefers_mobile_then_name_within_department_and_never_guesses() -> None:
    users = [
        DirectoryUser("u1", "王建国", "13800000001", ("第一党支部",)),
        DirectoryUser("u3", "张三", "", ("第一党支部",)),
        DirectoryUser("u3b", "张三", "", ("第二党支部",)),
        DirectoryUser("u4a", "李四", "", ("办公室",)),
        DirectoryUser("u4b", "李四", "", ("财务科",)),
        DirectoryUser("u9", "外单位", "", ("后勤",)),
        DirectoryUser("u7", "陈七", "", ("第一党支部",)),
    ]
    report = match_directory(
        [entry(1, "王建国", "13800000001"), entry(3, "张三"), entry(4, "李四"), entry(5, "王五"),
         entry(7, "陈七", current="u7")],
        users,
    )
    assert [(e.name, u.user_id, how) for e, u, how in report.matched] == [("王建国", "u1", "手机号"), ("张三", "u3", "姓名+部门")]
    assert [(e.name, sorted(u.user_id for u in us)) for e, us in report.ambiguous] == [("李四", ["u4a", "u4b"])]
    assert [e.name for e in report.missing] == ["王五"]
    assert [e.name for e in report.unchanged] == ["陈七"]
    assert {u.user_id for u in report.not_in_roster} == {"u3b", "u4a", "u4b", "u9"}


async def _seed(settings: Any, clock: FakeClock) -> None:
    bot = await start_bot(settings, clock)
    await stop_bot(bot)


async def test_members_sync_dingtalk_fills_ids(settings_factory: Any, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    async with FakeDingTalk(clock=clock) as fake:
        fake.set_directory(
            [(100, "第一党支部", 1), (200, "第二党支部", 1)],
            {
                100: [{"userid": "manager01", "name": "王建国", "mobile": "13800000001"},
                      {"userid": "user03", "name": "张三"}, {"userid": "user77", "name": "路人甲"}],
                200: [{"userid": "user11", "name": "孙丽", "mobile": "13800000011"}, {"userid": "user03b", "name": "张三"}],
            },
        )
        settings = await settings_factory(**{
            "dingtalk": {"enabled": True, "mode": "http", "app_key": fake.app_key, "app_secret": fake.app_secret,
                         "api_base": fake.base_url, "oapi_base": fake.base_url},
            "demo.announce_current": False,
        })
        await _seed(settings, clock)
        assert await run_sync(settings, "dingtalk", dry_run=True) == 0
        out = capsys.readouterr().out
        assert "试运行" in out and "王建国 → manager01（手机号）" in out and "张三 → user03（姓名+部门）" in out
        assert "路人甲" in out and "名册中有、平台上未找到" in out
        bot = await start_bot(settings, clock)
        try:
            async with bot.app.sessions() as session:
                assert (await session.execute(select(Member.dingtalk_userid).where(Member.name == "王建国"))).scalar_one() is None
        finally:
            await stop_bot(bot)
        assert await run_sync(settings, "dingtalk", dry_run=False) == 0
        bot = await start_bot(settings, clock)
        try:
            async with bot.app.sessions() as session:
                ids = dict((await session.execute(select(Member.name, Member.dingtalk_userid))).tuples().all())
        finally:
            await stop_bot(bot)
        assert ids["王建国"] == "manager01" and ids["张三"] == "user03" and ids["孙丽"] == "user11"
        assert ids["李四"] is None


async def test_members_sync_wecom_matches_by_name_within_department(
    settings_factory: Any, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    users = [FakeUser("WangJianGuo", "王建国", (2,)), FakeUser("ZhangSan", "张三", (2,)), FakeUser("ZhangSan2", "张三", (3,)),
             FakeUser("LiSi1", "李四", (3,)), FakeUser("LiSi2", "李四", (1,))]
    async with FakeWeCom(users=users, clock=clock) as fake:
        settings = await settings_factory(**{
            "wecom": {"enabled": True, "corp_id": fake.corp_id, "agent_id": fake.agent_id, "secret": fake.secret,
                      "api_base": fake.base_url},
            "demo.announce_current": False,
        })
        await _seed(settings, clock)
        assert await run_sync(settings, "wecom", dry_run=False) == 0
        out = capsys.readouterr().out
        assert "需人工确认" in out and "李四" in out  # two 李四, neither in 第一党支部: asked, not guessed
        bot = await start_bot(settings, clock)
        try:
            async with bot.app.sessions() as session:
                ids = dict((await session.execute(select(Member.name, Member.wecom_userid))).tuples().all())
        finally:
            await stop_bot(bot)
        assert ids["王建国"] == "wangjianguo" and ids["张三"] == "zhangsan" and ids["李四"] is None


async def test_contact_leave_event_prompts_the_secretary(settings_factory: Any, clock: FakeClock) -> None:
    async with FakeDingTalk(clock=clock) as fake:
        settings = await settings_factory(**{
            "dingtalk": {"enabled": True, "mode": "stream", "app_key": fake.app_key, "app_secret": fake.app_secret,
                         "api_base": fake.base_url, "oapi_base": fake.base_url},
            "demo.announce_current": False,
        })
        bot = await start_bot(settings, clock)
        try:
            async with bot.app.sessions() as session, session.begin():
                await session.execute(update(Member).where(Member.name == "张三").values(dingtalk_userid="user03"))
            await fake.wait_connections(1)
            frame_id = await fake.push_event("user_leave_org", ["user03"], "ev-1")
            await fake.wait_ack(frame_id)
            await fake.push_event("user_leave_org", ["user03"], "ev-1")  # a repeated push
            for _ in range(50):
                await bot.app.flush_outbox()
                lines = [m["text"] for m in await bot.transcript("dm:13800000001") if "人员变动" in m["text"]]
                if lines:
                    break
                await asyncio.sleep(0.05)  # the event is handled in a background task after the ACK
            await bot.app.flush_outbox()
            lines = [m["text"] for m in await bot.transcript("dm:13800000001") if "人员变动" in m["text"]]
            assert len(lines) == 1 and "张三" in lines[0] and "不会自动" in lines[0]
            async with bot.app.sessions() as session:
                active = (await session.execute(select(Member.active).where(Member.name == "张三"))).scalar_one()
            assert active is True
        finally:
            await stop_bot(bot)
