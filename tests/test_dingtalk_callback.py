"""HTTP-mode routes: POST /dingtalk/callback (robot messages) and POST /dingtalk/events (contact events)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Mapping
from unittest import mock

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from bot.platforms.dingtalk import parse as parse_module
from bot.platforms.dingtalk.events import EventCrypto
from bot.platforms.dingtalk.settings import DingTalkSettings
from tests.fakes.dingtalk_server import AdapterRig, adapter_rig, sample_bot_message, signed_callback

SECRET = "this is a secret"
AES_KEY = "1234567890123456789012345678901234567890123"
SETTINGS = DingTalkSettings(enabled=True, mode="http", app_key="dingabc123", app_secret=SECRET,
                            public_url="https://bot.example.cn", event_token="123456", event_aes_key=AES_KEY)


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
async def served() -> AsyncIterator[tuple[AdapterRig, TestClient]]:
    async with adapter_rig(SETTINGS, start=True) as rig:
        app = web.Application()
        app.add_routes(rig.adapter.routes())
        async with TestClient(TestServer(app)) as client:
            yield rig, client


async def test_routes_depend_on_mode_and_event_config() -> None:
    paths = [r.path for r in (await _routes(SETTINGS))]
    assert paths == ["/dingtalk/callback", "/dingtalk/events"]
    assert await _routes(DingTalkSettings(mode="stream", app_key="a", app_secret="b")) == []


async def _routes(settings: DingTalkSettings) -> list[web.RouteDef]:
    async with adapter_rig(settings) as rig:
        return [r for r in rig.adapter.routes() if isinstance(r, web.RouteDef)]


async def test_valid_callback_answers_empty_and_feeds_the_sink_once(served: tuple[AdapterRig, TestClient]) -> None:
    rig, client = served
    headers, body = signed_callback(sample_bot_message(), SECRET, now_ms())
    resp = await client.post("/dingtalk/callback", data=body, headers=headers)
    assert resp.status == 200
    assert await resp.json() == {"msgtype": "empty"}
    await rig.wait_for(lambda: len(rig.received) == 1)
    assert rig.received[0].text == "明天下午开会收到"
    assert rig.received[0].message_id == "msgA1b2C3=="
    usage = await rig.adapter.quota_usage()
    assert usage["push_used"] == 1 and usage["api_used"] == 0


@pytest.mark.parametrize(
    "case", ["forged", "stale", "missing_sign", "missing_timestamp", "future"],
)
async def test_bad_signature_is_401_before_the_body_is_parsed(
    served: tuple[AdapterRig, TestClient], case: str
) -> None:
    rig, client = served
    ts = now_ms()
    # Invalid JSON: if the body were parsed first, the answer would be 400, not 401.
    headers, body = signed_callback(b"{not json", SECRET, ts)
    if case == "forged":
        headers, _ = signed_callback(b"", "wrong secret", ts)
    elif case == "stale":
        headers, _ = signed_callback(b"", SECRET, ts - 3_700_000)
    elif case == "future":
        headers, _ = signed_callback(b"", SECRET, ts + 3_700_000)
    elif case == "missing_sign":
        del headers["sign"]
    else:
        del headers["timestamp"]
    with mock.patch.object(parse_module.json, "loads", side_effect=AssertionError("parsed")) as loads:
        resp = await client.post("/dingtalk/callback", data=body, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["errcode"] == 401
    loads.assert_not_called()
    assert rig.received == []


async def test_one_megabyte_body_is_413(served: tuple[AdapterRig, TestClient]) -> None:
    _, client = served
    headers, body = signed_callback(b"x" * (1024 * 1024), SECRET, now_ms())
    resp = await client.post("/dingtalk/callback", data=body, headers=headers)
    assert resp.status == 413


async def test_chunked_oversized_body_is_413(served: tuple[AdapterRig, TestClient]) -> None:
    _, client = served
    headers, _ = signed_callback(b"", SECRET, now_ms())

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 10_000

    resp = await client.post("/dingtalk/callback", data=chunks(), headers=headers)
    assert resp.status == 413


@pytest.mark.parametrize("body", [b"{not json", b"[]", json.dumps({"msgtype": "text"}).encode()])
async def test_malformed_body_with_valid_signature_is_400(served: tuple[AdapterRig, TestClient], body: bytes) -> None:
    rig, client = served
    headers, raw = signed_callback(body, SECRET, now_ms())
    resp = await client.post("/dingtalk/callback", data=raw, headers=headers)
    assert resp.status == 400
    assert rig.received == []


async def test_quota_push_alerts_admin_and_answers_empty(served: tuple[AdapterRig, TestClient]) -> None:
    rig, client = served
    body = sample_bot_message(errorCode=20001, errorMessage="受调用量超量影响")
    del body["text"]
    for _ in range(2):
        headers, raw = signed_callback(body, SECRET, now_ms())
        resp = await client.post("/dingtalk/callback", data=raw, headers=headers)
        assert await resp.json() == {"msgtype": "empty"}
    await rig.wait_for(lambda: len(rig.alerts) >= 1)
    assert len(rig.alerts) == 1 and "20001" in rig.alerts[0][1]
    assert rig.received == []


async def test_not_started_is_503() -> None:
    async with adapter_rig(SETTINGS) as rig:
        app = web.Application()
        app.add_routes(rig.adapter.routes())
        async with TestClient(TestServer(app)) as client:
            headers, body = signed_callback(sample_bot_message(), SECRET, now_ms())
            resp = await client.post("/dingtalk/callback", data=body, headers=headers)
            assert resp.status == 503


# --- contact events over HTTP ---------------------------------------------------------------------------

async def _event_request(client: TestClient, crypto: EventCrypto, payload: Mapping[str, object]) -> ClientResponse:
    enc = await crypto.encrypt_text(json.dumps(payload), now_ms())
    params = {"msg_signature": enc["msg_signature"], "timestamp": enc["timeStamp"], "nonce": enc["nonce"]}
    return await client.post("/dingtalk/events", params=params, json={"encrypt": enc["encrypt"]})


async def test_event_check_url_and_leave_event(served: tuple[AdapterRig, TestClient]) -> None:
    rig, client = served
    crypto = EventCrypto("123456", AES_KEY, "dingabc123")
    leave = {"EventType": "user_leave_org", "eventId": "ev1", "userId": ["015xxxx227"]}
    payloads: list[dict[str, object]] = [{"EventType": "check_url"}, leave, dict(leave)]  # the 3rd is a redelivery
    for payload in payloads:
        resp = await _event_request(client, crypto, payload)
        assert resp.status == 200
        answer = await resp.json()
        plain = await crypto.decrypt(answer["msg_signature"], answer["timeStamp"], answer["nonce"], answer["encrypt"])
        assert plain == {"plain": "success"}
    await rig.wait_for(lambda: len(rig.events) == 1)
    assert rig.events[0].user_ids == ("015xxxx227",)
    assert rig.events[0].event_type == "user_leave_org"
    assert len(rig.events) == 1  # the duplicate eventId was dropped


async def test_event_with_bad_signature_is_401(served: tuple[AdapterRig, TestClient]) -> None:
    _, client = served
    crypto = EventCrypto("wrong-token", AES_KEY, "dingabc123")
    resp = await _event_request(client, crypto, {"EventType": "check_url"})
    assert resp.status == 401


async def test_received_at_is_utc(served: tuple[AdapterRig, TestClient]) -> None:
    rig, client = served
    headers, body = signed_callback(sample_bot_message(msgId="m2", createAt=str(now_ms())), SECRET, now_ms())
    await client.post("/dingtalk/callback", data=body, headers=headers)
    await rig.wait_for(lambda: len(rig.received) == 1)
    assert rig.received[0].received_at.tzinfo is dt.UTC
