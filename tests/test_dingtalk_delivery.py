"""``deliver`` against the fake DingTalk: batching, session webhooks, custom robots, files, directory."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.clock import FakeClock
from bot.message import MessageFormat, OutgoingMessage, Platform, Recipient
from bot.platforms.base import DeliveryStatus
from bot.platforms.dingtalk.settings import GroupWebhook
from tests.fakes.dingtalk_server import FakeDingTalk, adapter_rig

SENT, RETRY, FAILED = DeliveryStatus.SENT, DeliveryStatus.RETRY, DeliveryStatus.FAILED
CID = "cidXyZ123=="


def to_user(user: str, text: str = "请回复本月党费缴纳情况", **kw: object) -> OutgoingMessage:
    return OutgoingMessage(Recipient(Platform.DINGTALK, user_id=user), text, **kw)  # type: ignore[arg-type]


def to_group(text: str = "请于周五前完成学习", cid: str = CID, **kw: object) -> OutgoingMessage:
    return OutgoingMessage(Recipient(Platform.DINGTALK, conversation_id=cid), text, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 5, 8, 2, 0, tzinfo=dt.UTC))


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(clock=clock) as server:
        yield server


async def test_same_text_to_45_users_takes_3_batch_calls(fake: FakeDingTalk, clock: FakeClock) -> None:
    users = [f"user{i:03d}" for i in range(45)]
    messages = [to_user(u) for u in users] + [to_user("dup")] + [
        OutgoingMessage(Recipient(Platform.DINGTALK, conversation_id="dm:dup"), "请回复本月党费缴纳情况")]
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        deliveries = await rig.adapter.deliver(messages)
    assert [d.status for d in deliveries] == [SENT] * 47
    assert all(d.platform_calls == 1 for d in deliveries)
    assert fake.calls["batchSend"] == 3
    assert sorted(len(m["user_ids"]) for m in fake.oto_messages) == [6, 20, 20]
    received = [u for m in fake.oto_messages for u in m["user_ids"]]
    assert sorted(received) == sorted([*users, "dup"])  # the duplicate user got it once
    assert {m["msg_key"] for m in fake.oto_messages} == {"sampleText"}
    assert fake.oto_messages[0]["param"] == {"content": "请回复本月党费缴纳情况"}


async def test_different_texts_and_groups_are_separate_calls(fake: FakeDingTalk, clock: FakeClock) -> None:
    messages = [to_user("a", "一"), to_user("b", "一"), to_user("c", "二"),
                to_group("### 学习", format=MessageFormat.MARKDOWN), to_group("通知", cid="cidOther")]
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        deliveries = await rig.adapter.deliver(messages)
    assert all(d.status is SENT for d in deliveries)
    assert fake.calls["batchSend"] == 2 and fake.calls["groupMessages"] == 2
    markdown = next(m for m in fake.group_messages if m["conversation_id"] == CID)
    assert markdown == {"conversation_id": CID, "msg_key": "sampleMarkdown",
                        "param": {"title": "学习", "text": "### 学习"}}


async def test_invalid_and_flow_controlled_users(fake: FakeDingTalk, clock: FakeClock) -> None:
    fake.invalid_user_ids = {"gone"}
    fake.flow_controlled_user_ids = {"busy"}
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        ok, gone, busy = await rig.adapter.deliver([to_user("ok"), to_user("gone"), to_user("busy")])
    assert ok.status is SENT
    assert gone.status is FAILED and "gone" in gone.detail
    assert busy.status is RETRY and busy.retry_after == 60.0
    assert fake.oto_messages[0]["user_ids"] == ["ok"]


async def test_non_dingtalk_and_wrong_messages_fail_without_calls(fake: FakeDingTalk, clock: FakeClock) -> None:
    wrong = OutgoingMessage(Recipient(Platform.WECOM, user_id="x"), "hi")
    no_file = to_user("u", "", format=MessageFormat.FILE)
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        deliveries = await rig.adapter.deliver([wrong, no_file])
    assert [d.status for d in deliveries] == [FAILED, FAILED]
    assert sum(fake.calls.values()) == 0


# --- session webhook ----------------------------------------------------------------------------------

async def test_live_session_webhook_reply_mentions_the_asker(fake: FakeDingTalk, clock: FakeClock) -> None:
    url, expires = fake.add_session()
    handle = {"session_webhook": url, "session_webhook_expires_ms": str(expires), "sender_staff_id": "manager4220"}
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        [d] = await rig.adapter.deliver([to_group("已记录您的回复", reply_handle=handle)])
    assert d.status is SENT and d.platform_calls == 1
    assert fake.calls["groupMessages"] == 0
    body = fake.session_messages[0]["body"]
    assert body["at"]["atUserIds"] == ["manager4220"]
    assert body["text"]["content"] == "已记录您的回复\n@manager4220"
    assert (await rig.adapter.quota_usage())["push_used"] == 1


@pytest.mark.parametrize("how", ["expired_by_time", "expired_on_server", "foreign_host"])
async def test_dead_session_webhook_falls_back_to_the_api(fake: FakeDingTalk, clock: FakeClock, how: str) -> None:
    url, expires = fake.add_session(ttl_ms=60_000)
    if how == "expired_by_time":
        clock.advance(dt.timedelta(minutes=2))
    elif how == "expired_on_server":
        url = url.replace("session=", "session=unknown")  # the server answers 300001
    else:
        url = "https://evil.example.com/robot/sendBySession?session=x"
    handle = {"session_webhook": url, "session_webhook_expires_ms": str(expires), "sender_staff_id": "u1"}
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        dm, group = await rig.adapter.deliver([
            to_user("u1", "收到", reply_handle=handle), to_group("收到", reply_handle=handle)])
    assert dm.status is SENT and group.status is SENT
    assert fake.calls["sendBySession"] == (2 if how == "expired_on_server" else 0)
    assert fake.session_messages == []
    assert fake.calls["batchSend"] == 1 and fake.calls["groupMessages"] == 1


# --- custom robot -------------------------------------------------------------------------------------

async def test_custom_robot_signs_mentions_and_queues_20_per_minute(fake: FakeDingTalk, clock: FakeClock) -> None:
    webhook = fake.add_robot(secret="SECabc")
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:  # time passes only on the shared FakeClock
        waited.append(seconds)
        clock.advance(dt.timedelta(seconds=seconds))

    groups = [GroupWebhook(conversation_id=CID, webhook_url=webhook, webhook_secret="SECabc")]
    messages = [to_group(f"请@{i}提交思想汇报", mention_user_ids=(f"user{i}",)) for i in range(25)]
    async with adapter_rig(fake.settings(), clock=clock, groups=groups, sleep=fake_sleep) as rig:
        deliveries = await rig.adapter.deliver(messages)
    assert [d.status for d in deliveries] == [SENT] * 25
    assert len(fake.robot_messages) == 25 and fake.calls["robot"] == 25  # never a 130101
    assert sum(waited) >= 59  # the 21st waited for the minute to roll over
    body = fake.robot_messages[3]["body"]
    assert body["at"] == {"atUserIds": ["user3"], "isAtAll": False}
    assert body["text"]["content"].endswith("\n@user3")
    assert fake.calls["groupMessages"] == 0


async def test_custom_robot_throttled_backs_off_then_misconfig_falls_back(fake: FakeDingTalk, clock: FakeClock) -> None:
    webhook = fake.add_robot(secret="SECabc")
    fake.inject("robot", [("http", 200, {"errcode": 130101, "errmsg": "send too fast"})])
    groups = [GroupWebhook(conversation_id=CID, webhook_url=webhook, webhook_secret="SECabc")]
    async with adapter_rig(fake.settings(), clock=clock, groups=groups) as rig:
        [first] = await rig.adapter.deliver([to_group("提醒", mention_user_ids=("u1",))])
        [second] = await rig.adapter.deliver([to_group("提醒", mention_user_ids=("u1",))])
        assert first.status is RETRY and first.retry_after == 600.0
        assert second.status is RETRY and fake.calls["robot"] == 1  # resting: not even tried
    bad = [GroupWebhook(conversation_id=CID, webhook_url=webhook, webhook_secret="SECwrong")]
    async with adapter_rig(fake.settings(), clock=clock, groups=bad) as rig:
        [d] = await rig.adapter.deliver([to_group("提醒", mention_user_ids=("u1",))])
    assert d.status is SENT and fake.calls["groupMessages"] == 1  # 310000 → sent without @
    query = parse_qs(urlsplit(webhook).query)
    assert "access_token" in query


# --- files and directory ------------------------------------------------------------------------------

async def test_file_is_uploaded_once_and_sent_as_sample_file(fake: FakeDingTalk, clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "ledger.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"0" * 2048)
    kw = {"format": MessageFormat.FILE, "file_path": str(path), "file_name": "党费台账.xlsx"}
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        deliveries = await rig.adapter.deliver([to_group("", **kw), to_user("a", "", **kw), to_user("b", "", **kw)])
    assert [d.status for d in deliveries] == [SENT] * 3
    assert [d.platform_calls for d in deliveries] == [2, 2, 2]
    assert fake.uploads == [{"type": "file", "filename": "file.xlsx", "size": 2052,
                             "media_id": fake.uploads[0]["media_id"]}]
    expected = {"mediaId": fake.uploads[0]["media_id"], "fileName": "党费台账.xlsx", "fileType": "xlsx"}
    assert fake.group_messages[0]["msg_key"] == "sampleFile" and fake.group_messages[0]["param"] == expected
    assert fake.oto_messages == [{"user_ids": ["a", "b"], "msg_key": "sampleFile", "param": expected}]


async def test_missing_file_fails(fake: FakeDingTalk, clock: FakeClock, tmp_path: Path) -> None:
    msg = to_user("a", "", format=MessageFormat.IMAGE, file_path=str(tmp_path / "none.png"))
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        [d] = await rig.adapter.deliver([msg])
    assert d.status is FAILED and "unreadable" in d.detail


async def test_directory_walks_departments_and_pages(fake: FakeDingTalk, clock: FakeClock) -> None:
    many = [{"userid": f"u{i}", "name": f"党员{i}", "dept_id_list": [100], "active": True} for i in range(230)]
    shared = {"userid": "sec1", "name": "李书记", "mobile": "13800000000", "dept_id_list": [100, 101]}
    fake.set_directory(
        [(100, "第一党支部", 1), (101, "第二党支部", 1), (102, "第一党小组", 100)],
        {1: [], 100: [*many, shared], 101: [shared, {"userid": "x", "name": "离职", "active": False,
                                                     "dept_id_list": [101]}], 102: []},
    )
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        users = await rig.adapter.directory()
        usage = await rig.adapter.quota_usage()
    by_id = {u.user_id: u for u in users}
    assert len(users) == 232
    assert by_id["sec1"].departments == ("第一党支部", "第二党支部")
    assert by_id["sec1"].mobile == "13800000000"
    assert by_id["x"].active is False
    assert fake.calls["listsub"] == 4  # root, 100, 101, 102
    assert fake.calls["userlist"] == 6  # root 1, dept 100: 3 pages (231 users), 101: 1, 102: 1
    assert usage["api_used"] == 0  # contacts APIs are exempt from the monthly quota


async def test_long_text_is_split_into_parts(fake: FakeDingTalk, clock: FakeClock) -> None:
    text = "\n".join(f"{i:04d} 学习内容：习近平新时代中国特色社会主义思想" for i in range(800))
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        [d] = await rig.adapter.deliver([to_group(text)])
    assert d.status is SENT and d.platform_calls == len(fake.group_messages) > 1
    assert "\n".join(m["param"]["content"] for m in fake.group_messages) == text
    assert all(len(json.dumps(m["param"], ensure_ascii=False).encode()) <= 15000 for m in fake.group_messages)
