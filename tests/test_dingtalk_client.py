"""The API client against the fake DingTalk: tokens, error mapping, quota counting and alerts."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from bot.clock import SHANGHAI, FakeClock
from bot.errors import PlatformAPIError
from bot.kv.memory import MemoryKV
from bot.message import OutgoingMessage, Platform, Recipient
from bot.platforms.base import DeliveryStatus
from bot.platforms.dingtalk.client import DOCUMENTED_QPS, process_rate
from bot.platforms.dingtalk.errors import check_response
from tests.fakes.dingtalk_server import FakeDingTalk, adapter_rig

QPS_LIMIT = {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "message": "qps"}
SENT, RETRY, FAILED = DeliveryStatus.SENT, DeliveryStatus.RETRY, DeliveryStatus.FAILED


def group_msg(text: str = "请于周五前完成学习", cid: str = "cidXyZ123==") -> OutgoingMessage:
    return OutgoingMessage(Recipient(Platform.DINGTALK, conversation_id=cid), text)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 5, 31, 15, 0, tzinfo=dt.UTC))  # 23:00 in Shanghai


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(clock=clock) as server:
        yield server


async def test_token_is_cached_and_shared_through_the_kv(fake: FakeDingTalk, clock: FakeClock) -> None:
    kv = MemoryKV(clock)
    async with adapter_rig(fake.settings(), clock=clock, kv=kv) as one:
        for _ in range(3):
            assert [d.status for d in await one.adapter.deliver([group_msg(), group_msg("二")])] == [SENT, SENT]
    async with adapter_rig(fake.settings(), clock=clock, kv=kv) as two:  # a second instance
        await two.adapter.deliver([group_msg()])
    assert fake.calls["accessToken"] == 1
    assert fake.calls["groupMessages"] == 7
    # Five minutes before expiry the token is refreshed (DingTalk hands back the same one, extended).
    clock.advance(dt.timedelta(seconds=7200 - 299))
    async with adapter_rig(fake.settings(), clock=clock, kv=kv) as three:
        await three.adapter.deliver([group_msg()])
    assert fake.calls["accessToken"] == 2


async def test_invalid_token_is_refreshed_and_the_call_retried_once(fake: FakeDingTalk, clock: FakeClock) -> None:
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        await rig.adapter.deliver([group_msg()])
        fake.invalidate_tokens()  # e.g. the secret was reset
        [delivery] = await rig.adapter.deliver([group_msg("第二条")])
        assert delivery.status is SENT
        assert fake.calls["accessToken"] == 2 and fake.calls["groupMessages"] == 3
        assert len(fake.group_messages) == 2
        # Still invalid after the refresh: no loop, the message is retried later.
        fake.inject("groupMessages", [("http", 400, {"code": "InvalidAuthentication"})] * 2)
        [delivery] = await rig.adapter.deliver([group_msg("第三条")])
        assert delivery.status is RETRY and fake.calls["groupMessages"] == 5


async def test_rejected_credentials_keep_messages_and_alert(fake: FakeDingTalk, clock: FakeClock) -> None:
    async with adapter_rig(fake.settings(app_secret="wrong"), clock=clock) as rig:
        [d] = await rig.adapter.deliver([group_msg()])
    assert d.status is RETRY and d.retry_after == 60.0
    assert fake.calls["groupMessages"] == 0
    assert [key for key, _ in rig.alerts] == ["dingtalk:credentials:invalidClientIdOrSecret"]
    assert "app_secret" in rig.alerts[0][1]


async def test_oapi_token_error_40014_also_refreshes(fake: FakeDingTalk, clock: FakeClock) -> None:
    fake.set_directory([], {1: [{"userid": "u1", "name": "张三", "dept_id_list": [1]}]})
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        await rig.adapter.client.access_token()
        fake.invalidate_tokens()
        assert [u.user_id for u in await rig.adapter.directory()] == ["u1"]
    assert fake.calls["accessToken"] == 2


async def test_flow_control_is_retry_with_growing_back_off(fake: FakeDingTalk, clock: FakeClock) -> None:
    fake.inject("groupMessages", [("http", 403, QPS_LIMIT)] * 3)
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        waits = []
        for _ in range(3):
            [d] = await rig.adapter.deliver([group_msg()])
            assert d.status is RETRY
            waits.append(d.retry_after)
        assert waits == [1.0, 2.0, 4.0]
        [d] = await rig.adapter.deliver([group_msg()])
        assert d.status is SENT
    assert (await rig.adapter.quota_usage())["api_used"] == 1  # throttled calls are not counted


@pytest.mark.parametrize(
    "fault",
    [("http", 500, {"code": "system.error"}), ("http", 504, {}), ("http", 200, {"errcode": -1, "errmsg": "busy"}),
     ("http", 429, {"code": "system.busy"}), ("timeout", 0.6)],
)
async def test_transient_errors_are_retry(fake: FakeDingTalk, clock: FakeClock, fault: tuple[object, ...]) -> None:
    fake.inject("groupMessages", [fault])
    async with adapter_rig(fake.settings(), clock=clock, http_timeout_s=0.3) as rig:
        [d] = await rig.adapter.deliver([group_msg()])
    assert d.status is RETRY and d.retry_after is not None and d.retry_after >= 1.0


async def test_quota_exhausted_fails_and_alerts_once(fake: FakeDingTalk, clock: FakeClock) -> None:
    quota = ("http", 403, {"code": "Forbidden.AccessDenied.ApiCountLimitForOrg", "message": "超额"})
    fake.inject("groupMessages", [quota] * 3)
    async with adapter_rig(fake.settings(), clock=clock) as rig:
        first = await rig.adapter.deliver([group_msg("一"), group_msg("二")])
        second = await rig.adapter.deliver([group_msg("三")])
    assert [d.status for d in first + second] == [FAILED] * 3
    assert all("quota" in d.detail for d in first + second)
    assert fake.calls["groupMessages"] == 2  # after DingTalk said so, we stop calling
    assert len(rig.alerts) == 1
    assert "已用完" in rig.alerts[0][1] and "ApiCountLimitForOrg" in rig.alerts[0][1]


async def test_monthly_counter_warns_at_80_percent_once(fake: FakeDingTalk, clock: FakeClock) -> None:
    async with adapter_rig(fake.settings(monthly_api_quota=5), clock=clock) as rig:
        for i in range(5):
            await rig.adapter.deliver([group_msg(f"第{i}条")])
        usage = await rig.adapter.quota_usage()
        assert usage == {"api_used": 5, "api_quota": 5, "push_used": 0, "push_quota": 3000, "month": "2026-05"}
        assert [text for _, text in rig.alerts] == [
            "钉钉本月API调用量已用80%（4/5），请注意控制消息数量。",
            "钉钉本月API调用量已达上限（5/5），后续消息可能无法送达，请联系管理员扩容或等待下月重置。",
        ]
        # The month is the calendar month in Asia/Shanghai: 16:00 UTC on May 31 is already June.
        clock.advance(dt.timedelta(hours=1))
        assert clock.now().astimezone(SHANGHAI).month == 6
        await rig.adapter.deliver([group_msg()])
        assert (await rig.adapter.quota_usage())["api_used"] == 1


def test_check_response_mapping() -> None:
    ok = {"processQueryKey": "k"}
    assert check_response(200, ok) == ok
    assert check_response(200, {"errcode": "0", "errmsg": "ok"})["errmsg"] == "ok"
    cases: list[tuple[int, object, dict[str, object]]] = [
        (400, {"code": "InvalidAuthentication"}, {"token_invalid": True, "retryable": False}),
        (200, {"errcode": 42001}, {"token_invalid": True}),
        (401, None, {"token_invalid": True}),
        (200, {"errcode": 90018}, {"retryable": True, "retry_after": 1.0}),
        (403, {"code": "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi"}, {"retryable": True, "retry_after": 60.0}),
        (200, {"errcode": 90020}, {"quota": True, "retryable": False}),
        (200, {"errcode": 130101}, {"retryable": True, "retry_after": 600.0}),
        (200, {"errcode": 410100}, {"retryable": True, "retry_after": 600.0}),
        (200, {"status": 1111, "wait": 5}, {"retryable": True, "retry_after": 300.0}),
        (502, None, {"retryable": True}),
        (400, {"code": "invalidParameter.robotCode.empty"}, {"retryable": False, "quota": False}),
        (200, {"errcode": 310000, "errmsg": "sign not match"}, {"retryable": False}),
    ]
    for status, body, expected in cases:
        with pytest.raises(PlatformAPIError) as info:
            check_response(status, body)
        for attr, value in expected.items():
            assert getattr(info.value, attr) == value, (status, body, attr)


@pytest.mark.parametrize("processes", [1, 2, 3, 4, 8])
def test_workers_share_the_app_qps_out(processes: int) -> None:
    rate, burst = process_rate(18.0, processes)
    # One second's worst case (every process's burst saved up, then its rate) stays within DingTalk's 20.
    assert processes * (rate + burst) <= DOCUMENTED_QPS + 1e-9
    assert rate > 0 and burst >= 1.0
    if processes == 1:
        assert (rate, burst) == (18.0, 2.0)  # alone: as configured
    fast, _ = process_rate(1000.0, processes)  # against a fake server: the configured rate, shared out
    assert fast == pytest.approx(1000.0 / processes, rel=0.01)
