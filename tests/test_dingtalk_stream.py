"""Stream mode against the fake gateway: ACKs, ping, disconnect, watchdog, redelivery, back-off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from bot.platforms.dingtalk.stream import BACKOFF_CAP_S
from tests.fakes.dingtalk_server import (
    AdapterRig,
    FakeDingTalk,
    adapter_rig,
    fake_dingtalk,
    sample_bot_message,
)

__all__ = ["fake_dingtalk"]  # the fixture, imported for pytest


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
async def rig(fake_dingtalk: FakeDingTalk, sleeps: list[float]) -> AsyncIterator[AdapterRig]:
    async def quick_sleep(seconds: float) -> None:  # record the back-off, do not wait it out
        sleeps.append(seconds)
        await asyncio.sleep(0.01)

    settings = fake_dingtalk.settings(stream_ping_timeout_s=0.5)
    async with adapter_rig(settings, sleep=quick_sleep, start=True) as running:
        yield running


async def test_bot_message_is_acked_and_handed_to_the_sink(fake_dingtalk: FakeDingTalk, rig: AdapterRig) -> None:
    await fake_dingtalk.wait_connections(1)
    mid = await fake_dingtalk.push_bot_message(sample_bot_message(conversationType="1"),
                                               message_id="212ca9d7_974_1898c159aa6_1783b")
    ack = await fake_dingtalk.wait_ack(mid)
    assert ack == {"code": 200, "headers": {"messageId": mid, "contentType": "application/json"},
                   "message": "OK", "data": json.dumps({"response": None})}
    await rig.wait_for(lambda: len(rig.received) == 1)
    assert rig.received[0].conversation_id == "dm:manager4220"
    assert fake_dingtalk.tickets and fake_dingtalk.calls["connections"] == 1
    health = await rig.adapter.health()
    assert health.ok and health.detail["stream_connected"] is True
    assert (await rig.adapter.quota_usage())["push_used"] == 1


async def test_ping_echoes_opaque(fake_dingtalk: FakeDingTalk, rig: AdapterRig) -> None:
    await fake_dingtalk.wait_connections(1)
    mid = await fake_dingtalk.push_ping("123-dsfs")
    ack = await fake_dingtalk.wait_ack(mid)
    assert ack["code"] == 200 and json.loads(ack["data"]) == {"opaque": "123-dsfs"}


async def test_redelivered_message_reaches_the_sink_once(fake_dingtalk: FakeDingTalk, rig: AdapterRig) -> None:
    await fake_dingtalk.wait_connections(1)
    mid = await fake_dingtalk.push_bot_message(sample_bot_message())
    await fake_dingtalk.wait_ack(mid)
    await fake_dingtalk.redeliver(mid)
    second = await fake_dingtalk.push_bot_message(sample_bot_message(msgId="other=="))
    await rig.wait_for(lambda: len(rig.received) == 2)
    assert [m.message_id for m in rig.received] == ["msgA1b2C3==", "other=="]
    assert len([a for a in fake_dingtalk.acks if a["headers"]["messageId"] == mid]) == 2  # ACKed both times
    assert await fake_dingtalk.redeliver_unacked() == []
    assert second


async def test_disconnect_opens_a_new_connection_before_closing_the_old(
    fake_dingtalk: FakeDingTalk, rig: AdapterRig
) -> None:
    await fake_dingtalk.wait_connections(1)
    await fake_dingtalk.push_disconnect()
    await fake_dingtalk.wait_connections(2)
    await fake_dingtalk.wait_closed(1)
    assert fake_dingtalk.log[:3] == ["open#1", "open#2", "close#1"]
    assert len(fake_dingtalk.tickets) == 2 and len(set(fake_dingtalk.tickets)) == 2
    mid = await fake_dingtalk.push_bot_message(sample_bot_message())
    await fake_dingtalk.wait_ack(mid)
    assert fake_dingtalk.conns[1].acks[-1]["headers"]["messageId"] == mid
    await rig.wait_for(lambda: len(rig.received) == 1)


async def test_watchdog_reconnects_a_silent_connection(fake_dingtalk: FakeDingTalk, rig: AdapterRig) -> None:
    await fake_dingtalk.wait_connections(1)
    # Nothing is pushed, but the fake still answers the client's 0.25 s websocket pings: a zombie socket.
    # After stream_ping_timeout_s (0.5 s) without a frame the client must give up on it anyway.
    await fake_dingtalk.wait_connections(2, timeout=3.0)
    await fake_dingtalk.wait_closed(1)
    assert fake_dingtalk.calls["connections"] >= 2


async def test_server_close_reconnects_and_event_is_deduped(
    fake_dingtalk: FakeDingTalk, rig: AdapterRig
) -> None:
    first = await fake_dingtalk.wait_connections(1)
    await fake_dingtalk.push_event("user_leave_org", ["015xxxx227"], event_id="ev1")
    await first.ws.close()
    await fake_dingtalk.wait_connections(2)
    mid = await fake_dingtalk.push_event("user_leave_org", ["015xxxx227"], event_id="ev1")  # same event again
    ack = await fake_dingtalk.wait_ack(mid)
    assert json.loads(ack["data"]) == {"status": "SUCCESS", "message": "success"}
    await rig.wait_for(lambda: len(rig.events) == 1)
    await asyncio.sleep(0.05)
    assert [e.user_ids for e in rig.events] == [("015xxxx227",)]


async def test_auth_failure_backs_off_exponentially(fake_dingtalk: FakeDingTalk, sleeps: list[float]) -> None:
    enough = asyncio.Event()

    async def quick_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) >= 9:
            enough.set()
        await asyncio.sleep(0)

    settings = fake_dingtalk.settings(app_secret="wrong ")  # pasted with a space: stripped, still wrong
    async with adapter_rig(settings, sleep=quick_sleep, start=True) as rig:
        await asyncio.wait_for(enough.wait(), 3.0)
        assert not (await rig.adapter.health()).ok
        assert {key for key, _ in rig.alerts} == {"dingtalk:credentials:authFailed"}
    assert fake_dingtalk.calls["connect"] == 0
    for attempt, delay in enumerate(sleeps[:9]):
        base = min(BACKOFF_CAP_S, 2**attempt)
        assert base / 2 <= delay <= base
    assert max(sleeps) <= BACKOFF_CAP_S


async def test_instant_hang_ups_back_off_instead_of_spinning(fake_dingtalk: FakeDingTalk) -> None:
    sleeps: list[float] = []
    enough = asyncio.Event()

    async def quick_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) >= 5:
            enough.set()
        await asyncio.sleep(0)

    fake_dingtalk.close_on_connect = True
    async with adapter_rig(fake_dingtalk.settings(), sleep=quick_sleep, start=True):
        await asyncio.wait_for(enough.wait(), 3.0)
    assert len(fake_dingtalk.conns) <= len(sleeps) + 1  # every reconnect waited first
    assert sleeps[4] >= 8  # 1, 2, 4, 8, 16 s (with jitter): growing


async def test_stop_closes_the_socket(fake_dingtalk: FakeDingTalk) -> None:
    async with adapter_rig(fake_dingtalk.settings(), start=True) as rig:
        conn = await fake_dingtalk.wait_connections(1)
        await rig.adapter.stop()
    await fake_dingtalk.wait_closed(conn.index)
    assert rig.adapter.stream is None


async def test_only_the_stream_consumer_connects(fake_dingtalk: FakeDingTalk) -> None:
    """`run --workers N`: workers other than 0 serve HTTP and send, but open no Stream connection."""
    async with adapter_rig(fake_dingtalk.settings(), start=True, stream_consumer=False) as rig:
        health = await rig.adapter.health()
        assert rig.adapter.stream is None  # a consumer creates its StreamClient in start()
        assert health.ok and "stream_connected" not in health.detail
    async with adapter_rig(fake_dingtalk.settings(), start=True) as rig:
        await fake_dingtalk.wait_connections(1)
        assert rig.adapter.stream is not None
