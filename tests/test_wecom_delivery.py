"""``WeComAdapter.deliver`` / ``directory`` / ``health`` against the fake WeCom server."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import aiohttp
import pytest_asyncio

from bot.clock import FakeClock
from bot.kv.base import KV
from bot.kv.memory import MemoryKV
from bot.message import MessageFormat, OutgoingMessage, Platform, Recipient
from bot.platforms.base import DeliveryStatus, PlatformAdapter
from bot.platforms.wecom import GroupWebhook, WeComAdapter, WeComSettings
from tests.fakes.wecom_server import FakeUser, FakeWeCom, default_users

SENT, RETRY, FAILED = DeliveryStatus.SENT, DeliveryStatus.RETRY, DeliveryStatus.FAILED


@dataclass
class Env:
    fake: FakeWeCom
    session: aiohttp.ClientSession
    kv: KV
    slept: list[float] = field(default_factory=list)
    alerts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def clock(self) -> FakeClock:
        assert isinstance(self.fake.clock, FakeClock)
        return self.fake.clock

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(dt.timedelta(seconds=seconds))

    async def alert(self, key: str, text: str) -> None:
        self.alerts.append((key, text))

    def adapter(self, groups: Sequence[GroupWebhook] = (), **overrides: object) -> WeComAdapter:
        values: dict[str, object] = {
            "enabled": True,
            "corp_id": self.fake.corp_id,
            "agent_id": str(self.fake.agent_id),
            "secret": self.fake.secret,
            "api_base": self.fake.base_url,
        }
        values.update(overrides)
        settings = WeComSettings.model_validate(values)
        return WeComAdapter(
            settings,
            list(groups),
            self.kv,
            self.clock,
            self.session,
            self.alert,
            sleep=self.sleep,
            rng=lambda: 0.5,
        )


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    users = default_users() + [FakeUser(f"bulk{i:04d}", f"群众{i}", (3,)) for i in range(1100)]
    async with FakeWeCom(users=users) as fake, aiohttp.ClientSession() as session:
        yield Env(fake, session, cast(KV, MemoryKV(fake.clock)))


def dm(
    user: str, text: str = "【支部提醒】请于周五前提交学习心得，回复“已完成”即可。", **kw: object
) -> OutgoingMessage:
    return OutgoingMessage(Recipient(Platform.WECOM, user_id=user), text, **kw)  # type: ignore[arg-type]


def to_group(conversation: str, text: str, **kw: object) -> OutgoingMessage:
    return OutgoingMessage(Recipient(Platform.WECOM, conversation_id=conversation), text, **kw)  # type: ignore[arg-type]


HOOK = GroupWebhook(
    conversation_id="wrkGroup1", webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=hook-a"
)


async def test_same_text_to_25_members_is_one_call(env: Env) -> None:
    users = [f"member{i:02d}" for i in range(1, 26)]
    results = await env.adapter().deliver([dm(u) for u in users])
    assert [r.status for r in results] == [SENT] * 25 and {r.platform_calls for r in results} == {1}
    assert env.fake.calls["message/send"] == 1 and env.fake.calls["gettoken"] == 1
    assert sorted(d.to for d in env.fake.delivered) == users
    assert env.fake.requests["message/send"][0]["touser"] == "|".join(users)


async def test_more_than_1000_members_are_chunked(env: Env) -> None:
    users = [f"bulk{i:04d}" for i in range(1100)]
    results = await env.adapter().deliver([dm(u) for u in users])
    assert all(r.status is SENT for r in results)
    sizes = [len(r["touser"].split("|")) for r in env.fake.requests["message/send"]]
    assert sizes == [1000, 100]


async def test_partial_invaliduser(env: Env) -> None:
    messages = [dm("lisi"), dm("NoSuchUser"), dm("ZhangSan"), dm("ghost"), dm("wangwu")]
    results = await env.adapter().deliver(messages)
    assert [r.status for r in results] == [SENT, FAILED, SENT, FAILED, SENT]
    assert "可见范围" in results[1].detail and env.fake.calls["message/send"] == 1
    assert sorted(d.to for d in env.fake.delivered) == ["ZhangSan", "lisi", "wangwu"]


async def test_all_invalid_and_order_kept_across_contents(env: Env) -> None:
    messages = [
        dm("ghost1"),
        dm("lisi", "第二条"),
        dm("ghost2"),
        dm("wangwu", "第三条", format=MessageFormat.MARKDOWN),
    ]
    results = await env.adapter().deliver(messages)
    assert [r.status for r in results] == [FAILED, SENT, FAILED, SENT]
    assert "81013" in results[0].detail
    assert [(d.to, d.msgtype) for d in env.fake.delivered] == [("lisi", "text"), ("wangwu", "markdown")]


async def test_long_text_split_and_textcard(env: Env) -> None:
    long_text = "\n".join(f"{i}. 学习《党章》第{i}章并撰写心得体会" for i in range(120))
    adapter = env.adapter(card_url="https://dangjian.example.cn/")
    results = await adapter.deliver(
        [dm("lisi", long_text), dm("wangwu", "本月主题党日：周五下午三点。", title="主题党日通知")]
    )
    assert [r.status for r in results] == [SENT, SENT] and results[0].platform_calls >= 2
    parts = [d.content for d in env.fake.to("lisi")]
    assert "\n".join(parts) == long_text and all(len(p.encode()) <= 2048 for p in parts)
    [card] = env.fake.to("wangwu")
    assert card.msgtype == "textcard" and card.body["textcard"]["url"] == "https://dangjian.example.cn/"


async def test_member_pacing_defers_never_drops(env: Env) -> None:
    adapter = env.adapter()
    results = await adapter.deliver([dm("lisi", f"提醒{i}") for i in range(31)])
    assert [r.status for r in results].count(SENT) == 30
    assert (
        results[30].status is RETRY
        and results[30].retry_after is not None
        and 0 < results[30].retry_after <= 60
    )
    env.clock.advance(dt.timedelta(seconds=results[30].retry_after))
    assert (await adapter.deliver([dm("lisi", "提醒30")]))[0].status is SENT
    hourly = env.adapter(member_per_hour=2)
    env.clock.advance(dt.timedelta(minutes=5))
    statuses = [r.status for r in await hourly.deliver([dm("wangwu", f"h{i}") for i in range(3)])]
    assert statuses == [SENT, SENT, RETRY]


async def test_busy_retried_ban_deferred_ip_alerted_once(env: Env) -> None:
    adapter = env.adapter()
    env.fake.fail("message/send", errcode=-1)
    assert (await adapter.deliver([dm("lisi")]))[0].status is SENT
    env.fake.fail("message/send", errcode=45009)
    banned = (await adapter.deliver([dm("lisi", "另一条")]))[0]
    assert banned.status is RETRY and banned.retry_after is not None and banned.retry_after >= 60
    env.fake.fail("message/send", errcode=60020, times=3)
    for i in range(3):
        [result] = await adapter.deliver([dm("wangwu", f"第{i}次")])
        assert result.status is FAILED and "企业可信IP" in result.detail
    assert len(env.alerts) == 1 and "from ip: 203.0.113.7" in env.alerts[0][1]


async def test_group_webhook_queues_20_per_minute(env: Env) -> None:
    adapter = env.adapter([HOOK])
    messages = [to_group("wrkGroup1", f"第{i}条通知") for i in range(25)]
    results = await adapter.deliver(messages)
    assert [r.status for r in results] == [SENT] * 25
    assert env.fake.calls["webhook/send"] == 25 and [d.content for d in env.fake.to("hook-a")] == [
        m.text for m in messages
    ]
    assert sum(env.slept) >= 59  # waited out the minute instead of dropping or tripping 45009


async def test_webhook_45009_from_elsewhere_is_retry(env: Env) -> None:
    first, second = env.adapter([HOOK]), env.adapter([HOOK])  # two instances, separate limiters
    await first.deliver([to_group("wrkGroup1", f"a{i}") for i in range(20)])
    [result] = await second.deliver([to_group("wrkGroup1", "b")])
    assert result.status is RETRY and result.retry_after is not None and result.retry_after >= 60


async def test_webhook_mentions_text_and_markdown(env: Env) -> None:
    adapter = env.adapter([HOOK])
    text = to_group("wrkGroup1", "以下同志尚未交党费，请尽快缴纳。", mention_user_ids=("lisi", "wangwu"))
    md = to_group("wrkGroup1", "**党费提醒**", format=MessageFormat.MARKDOWN, mention_user_ids=("lisi",))
    assert [r.status for r in await adapter.deliver([text, md])] == [SENT, SENT]
    sent_text, sent_md = env.fake.to("hook-a")
    assert sent_text.mentions == ("lisi", "wangwu") and sent_text.msgtype == "text"
    assert sent_md.msgtype == "markdown" and "<@lisi>" in sent_md.content


async def test_unknown_group_and_other_platform_fail(env: Env) -> None:
    adapter = env.adapter([GroupWebhook(conversation_id="nohook")])
    other = OutgoingMessage(Recipient(Platform.DINGTALK, user_id="u"), "x")
    results = await adapter.deliver([to_group("nohook", "x"), other])
    assert [r.status for r in results] == [FAILED, FAILED] and env.fake.calls["webhook/send"] == 0
    bad_key = GroupWebhook(
        conversation_id="g2", webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=gone"
    )
    [removed] = await env.adapter([bad_key]).deliver([to_group("g2", "x")])
    assert removed.status is FAILED and "93000" in removed.detail and "93000" in env.alerts[0][0]


async def test_file_to_members_and_group(env: Env, tmp_path: Path) -> None:
    xlsx = tmp_path / "ledger.xlsx"
    xlsx.write_bytes(b"PK\x03\x04 fake spreadsheet bytes")
    adapter = env.adapter([HOOK])
    direct = [
        dm(u, "", format=MessageFormat.FILE, file_path=str(xlsx), file_name="2024年6月党费台账.xlsx")
        for u in ("lisi", "wangwu")
    ]
    group = to_group("wrkGroup1", "请查收本月台账", format=MessageFormat.FILE, file_path=str(xlsx))
    results = await adapter.deliver([*direct, group])
    assert [r.status for r in results] == [SENT] * 3 and results[0].platform_calls == 2
    assert env.fake.calls["media/upload"] == 1 and env.fake.calls["message/send"] == 1
    assert env.fake.calls["webhook/upload_media"] == 1
    names = sorted(name for name, _ in env.fake.media.values())
    assert names == ["2024年6月党费台账.xlsx", "ledger.xlsx"]
    assert {d.msgtype for d in env.fake.to("lisi")} == {"file"}
    assert [d.msgtype for d in env.fake.to("hook-a")] == ["text", "file"]
    missing = await adapter.deliver(
        [dm("lisi", "", format=MessageFormat.FILE, file_path=str(tmp_path / "nope"))]
    )
    assert missing[0].status is FAILED


async def test_smart_robot_reply_uses_response_url_once(env: Env) -> None:
    adapter = env.adapter([HOOK])
    expires = str(int(env.clock.now().timestamp()) + 3000)
    handle = {
        "response_url": env.fake.response_url("RC9"),
        "response_url_expires": expires,
        "chattype": "group",
    }
    replies = [
        to_group("wrkGroup1", "已登记：党费 50 元", reply_handle=handle),
        to_group("wrkGroup1", "谢谢！", reply_handle=handle),
    ]
    results = await adapter.deliver(replies)
    assert [r.status for r in results] == [SENT, SENT] and env.fake.calls["aibot/response"] == 1
    [reply] = env.fake.to("RC9")
    assert reply.msgtype == "markdown" and "党费 50 元" in reply.content and "谢谢" in reply.content
    # The response_url is spent: the next reply falls back to the group's webhook.
    assert (await adapter.deliver([to_group("wrkGroup1", "补充说明", reply_handle=handle)]))[0].status is SENT
    assert env.fake.calls["aibot/response"] == 1 and [d.content for d in env.fake.to("hook-a")] == [
        "补充说明"
    ]
    # A robot-only group without a webhook has nowhere else to go.
    lonely = {**handle, "response_url": env.fake.response_url("RC10")}
    env.fake.fail("aibot/response", errcode=40058)
    [failed] = await adapter.deliver([to_group("wrkRobotOnly", "x", reply_handle=lonely)])
    assert failed.status is FAILED


async def test_directory_names_departments_and_status(env: Env) -> None:
    users = {u.user_id: u for u in await env.adapter().directory()}
    assert users["ZhangSan"].name == "张三" and users["ZhangSan"].departments == ("第一党支部",)
    assert set(users["zhaoliu"].departments) == {"第一党支部", "第二党支部"}
    assert users["retired01"].active is False and users["lisi"].mobile == ""
    assert env.fake.calls["user/list"] == 3 and env.fake.calls["gettoken"] == 1


async def test_health(env: Env) -> None:
    adapter: PlatformAdapter = env.adapter()  # mypy checks the protocol here
    assert (await adapter.health()).ok
    env.fake.fail("message/send", errcode=60020)
    await adapter.deliver([dm("lisi")])
    health = await adapter.health()
    assert not health.ok and "60020" in str(health.detail["last_error"])
    unconfigured = await env.adapter(secret="").health()
    assert not unconfigured.ok and unconfigured.detail["missing"]


async def test_webhook_backlog_beyond_max_wait_is_retry(env: Env) -> None:
    adapter = env.adapter([HOOK], webhook_max_wait_seconds=10)
    results = await adapter.deliver([to_group("wrkGroup1", f"n{i}") for i in range(22)])
    assert [r.status for r in results] == [SENT] * 20 + [RETRY, RETRY]
    assert results[20].retry_after is not None and 50 < results[20].retry_after <= 60 and env.slept == []
