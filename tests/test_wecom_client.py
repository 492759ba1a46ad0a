"""The WeCom client against the fake server: token cache, errcode policy, retries, alerts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import aiohttp
import pytest
import pytest_asyncio

from bot.clock import FakeClock
from bot.kv.base import KV
from bot.kv.memory import MemoryKV
from bot.platforms.wecom.appmsg import send_app_message
from bot.platforms.wecom.client import ErrorKind, WeComAPIError, WeComClient, check_response
from bot.platforms.wecom.settings import WeComSettings
from tests.fakes.wecom_server import FROM_IP, FakeWeCom, Fault, fake_wecom  # noqa: F401

TEXT = {"msgtype": "text", "text": {"content": "【支部提醒】请于周五前提交学习心得"}}


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

    def settings(self, **overrides: object) -> WeComSettings:
        values: dict[str, object] = {
            "enabled": True,
            "corp_id": self.fake.corp_id,
            "agent_id": str(self.fake.agent_id),
            "secret": self.fake.secret,
            "api_base": self.fake.base_url,
            "duplicate_check_seconds": 0,
        }
        values.update(overrides)
        return WeComSettings.model_validate(values)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(dt.timedelta(seconds=seconds))

    async def alert(self, key: str, text: str) -> None:
        self.alerts.append((key, text))

    def client(self, **overrides: object) -> WeComClient:
        return WeComClient(
            self.settings(**overrides), self.kv, self.session, self.alert, sleep=self.sleep, rng=lambda: 0.5
        )


@pytest_asyncio.fixture
async def env(fake_wecom: FakeWeCom) -> AsyncIterator[Env]:  # noqa: F811
    async with aiohttp.ClientSession() as session:
        yield Env(fake_wecom, session, cast(KV, MemoryKV(fake_wecom.clock)))


async def test_token_fetched_once_across_clients_and_concurrent_sends(env: Env) -> None:
    first, second = env.client(), env.client()
    await asyncio.gather(
        *(c.call("GET", "/cgi-bin/department/list") for c in (first, second) for _ in range(5))
    )
    for client in (first, second):
        await send_app_message(client, ["lisi"], TEXT)
    assert env.fake.calls["gettoken"] == 1
    assert env.fake.calls["department/list"] == 10 and len(env.fake.to("lisi")) == 2


async def test_token_refreshed_about_a_minute_before_expiry(env: Env) -> None:
    client = env.client()
    await client.call("GET", "/cgi-bin/department/list")
    env.clock.advance(dt.timedelta(seconds=7200 - 90))
    await client.call("GET", "/cgi-bin/department/list")
    assert env.fake.calls["gettoken"] == 1
    env.clock.advance(dt.timedelta(seconds=40))  # now < 60 s before expiry: refresh, never reuse
    await client.call("GET", "/cgi-bin/department/list")
    assert env.fake.calls["gettoken"] == 2


@pytest.mark.parametrize("errcode", [40014, 42001])
async def test_revoked_token_refetched_and_retried_once(env: Env, errcode: int) -> None:
    client = env.client()
    await client.call("GET", "/cgi-bin/department/list")
    env.fake.revoke_tokens(errcode)
    result = await send_app_message(client, ["lisi", "wangwu"], TEXT)
    assert result.invalid == frozenset()
    assert env.fake.calls["gettoken"] == 2 and env.fake.calls["message/send"] == 2
    assert [d.to for d in env.fake.delivered] == ["lisi", "wangwu"]


async def test_token_error_twice_gives_up_after_one_retry(env: Env) -> None:
    env.fake.fail("message/send", errcode=40014, times=2)
    with pytest.raises(WeComAPIError) as err:
        await send_app_message(env.client(), ["lisi"], TEXT)
    assert err.value.token_invalid and err.value.retryable
    assert env.fake.calls["message/send"] == 2 and env.fake.calls["gettoken"] == 2


async def test_system_busy_is_retried_with_backoff(env: Env) -> None:
    env.fake.fail("message/send", errcode=-1)
    await send_app_message(env.client(), ["lisi"], TEXT)
    assert env.fake.calls["message/send"] == 2 and len(env.fake.to("lisi")) == 1
    assert len(env.slept) == 1 and 0.5 <= env.slept[0] < 1.0


async def test_system_busy_gives_up_after_three_attempts(env: Env) -> None:
    env.fake.fail("message/send", errcode=-1, times=3)
    with pytest.raises(WeComAPIError) as err:
        await send_app_message(env.client(), ["lisi"], TEXT)
    assert err.value.retryable and err.value.kind is ErrorKind.BUSY
    assert env.fake.calls["message/send"] == 3 and env.slept[1] > env.slept[0]


async def test_frequency_ban_is_not_waited_out_in_process(env: Env) -> None:
    env.fake.fail("message/send", errcode=45009)
    with pytest.raises(WeComAPIError) as err:
        await send_app_message(env.client(), ["lisi"], TEXT)
    assert err.value.retryable and err.value.retry_after is not None and err.value.retry_after >= 60
    assert env.fake.calls["message/send"] == 1 and env.slept == []


async def test_concurrency_limit_gets_short_jittered_retry(env: Env) -> None:
    env.fake.fail("message/send", errcode=45033, times=2)
    await send_app_message(env.client(), ["lisi"], TEXT)
    assert env.fake.calls["message/send"] == 3 and len(env.slept) == 2 and all(s <= 1.0 for s in env.slept)


async def test_untrusted_ip_fails_and_alerts_once(env: Env) -> None:
    client = env.client()
    env.fake.fail("message/send", errcode=60020, times=4)
    for _ in range(3):
        with pytest.raises(WeComAPIError) as err:
            await send_app_message(client, ["lisi"], TEXT)
        assert not err.value.retryable and err.value.kind is ErrorKind.IP_DENIED
    env.fake.fail("gettoken", errcode=60020)
    await env.kv.delete(f"wecom:token:{env.fake.corp_id}:{env.fake.agent_id}")
    with pytest.raises(WeComAPIError):
        await send_app_message(env.client(), ["lisi"], TEXT)  # a second client, same KV
    assert env.fake.calls["message/send"] == 3
    [(key, text)] = env.alerts
    assert key == f"wecom:60020:{FROM_IP}"
    assert (
        text == f"企业微信拒绝了本机IP（from ip: {FROM_IP}），请在应用的“企业可信IP”中加入本服务器的出口IP。"
    )


async def test_wrong_secret_is_a_config_error_without_loops(env: Env) -> None:
    client = env.client(secret="wrong")
    for _ in range(2):
        with pytest.raises(WeComAPIError) as err:
            await client.call("GET", "/cgi-bin/department/list")
        assert err.value.kind is ErrorKind.CONFIG and not err.value.retryable
    assert env.fake.calls["gettoken"] == 2 and env.fake.calls["department/list"] == 0
    assert len(env.alerts) == 1 and "Secret" in env.alerts[0][1]


async def test_all_recipients_invalid_is_81013(env: Env) -> None:
    with pytest.raises(WeComAPIError) as err:
        await send_app_message(env.client(), ["ghost1", "Ghost2"], TEXT)
    assert err.value.kind is ErrorKind.NO_RECIPIENT and not err.value.retryable
    assert err.value.payload["invaliduser"] == "ghost1|ghost2"


async def test_http_5xx_and_timeouts_are_retried(env: Env) -> None:
    env.fake.fail("department/list", Fault(status=502), Fault(delay=0.6))
    payload = await env.client(http_timeout_seconds=0.3).call("GET", "/cgi-bin/department/list")
    assert payload["department"] and env.fake.calls["department/list"] == 3 and len(env.slept) == 2


def test_check_response_mapping() -> None:
    assert check_response({"errcode": 0, "errmsg": "ok", "x": 1}) == {"errcode": 0, "errmsg": "ok", "x": 1}
    assert check_response({"access_token": "t"}) == {"access_token": "t"}
    cases = {
        40014: ErrorKind.TOKEN,
        42001: ErrorKind.TOKEN,
        -1: ErrorKind.BUSY,
        45009: ErrorKind.RATE,
        45033: ErrorKind.CONCURRENCY,
        60020: ErrorKind.IP_DENIED,
        81013: ErrorKind.NO_RECIPIENT,
        40001: ErrorKind.CONFIG,
        93000: ErrorKind.OTHER,
    }
    for code, kind in cases.items():
        with pytest.raises(WeComAPIError) as err:
            check_response({"errcode": code, "errmsg": "m"})
        assert err.value.kind is kind and err.value.code == str(code) and err.value.platform == "wecom"
    with pytest.raises(WeComAPIError) as err:
        check_response(None, status=503)
    assert err.value.kind is ErrorKind.TRANSPORT and err.value.retryable
    with pytest.raises(WeComAPIError) as err:
        check_response({"errcode": 0}, status=404)
    assert err.value.kind is ErrorKind.CONFIG and not err.value.retryable
