"""The WeCom callback routes end to end: a real aiohttp server, WeCom played by the callback driver."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.clock import FakeClock
from bot.kv.base import KV
from bot.kv.memory import MemoryKV
from bot.message import ConversationKind, IncomingMessage
from bot.platforms.base import InboundResult
from bot.platforms.wecom import WeComAdapter, WeComSettings
from tests.fakes.wecom_server import CallbackDriver, spec_encrypt, spec_sign, yarl_url

V1_TOKEN, V1_KEY, V1_CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
V2_QUERY = (
    "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr="
    "P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
)
V1_QUERY = "msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149"
V1_ENVELOPE = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
    "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwG"
    "c2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9"
    "EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0"
    "lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)
ROBOT_TOKEN, ROBOT_KEY = "robotToken42", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"


@dataclass
class Bot:
    adapter: WeComAdapter
    base: str
    session: aiohttp.ClientSession
    received: list[IncomingMessage] = field(default_factory=list)

    def app_driver(self, **kw: Any) -> CallbackDriver:
        kw.setdefault("agent_id", "218")
        return CallbackDriver.for_app(self.session, self.base, V1_TOKEN, V1_KEY, V1_CORP, **kw)

    async def get(self, path: str, query: str) -> tuple[int, str]:
        async with self.session.get(yarl_url(f"{self.base}{path}?{query}")) as resp:
            return resp.status, await resp.text()

    async def settled(self) -> list[IncomingMessage]:
        await self.adapter.drain()
        return self.received


def _settings(**overrides: object) -> WeComSettings:
    values: dict[str, object] = {
        "enabled": True,
        "corp_id": V1_CORP,
        "agent_id": "218",
        "secret": "unused",
        "token": V1_TOKEN,
        "encoding_aes_key": V1_KEY,
        "robot_token": ROBOT_TOKEN,
        "robot_encoding_aes_key": ROBOT_KEY,
        "api_base": "http://127.0.0.1:9",
    }
    values.update(overrides)
    return WeComSettings.model_validate(values)


MakeBot = Callable[..., Awaitable[Bot]]


@pytest_asyncio.fixture
async def make_bot() -> AsyncIterator[MakeBot]:
    cleanups: list[tuple[WeComAdapter, TestServer, aiohttp.ClientSession]] = []

    async def build(settings: WeComSettings | None = None, *, start: bool = True) -> Bot:
        session = aiohttp.ClientSession()
        clock = FakeClock(dt.datetime(2024, 6, 3, 9, 0, tzinfo=dt.UTC))
        adapter = WeComAdapter(settings or _settings(), [], cast(KV, MemoryKV(clock)), clock, session)
        app = web.Application()
        app.add_routes(adapter.routes())
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        bot = Bot(adapter, f"http://127.0.0.1:{server.port}", session)

        async def sink(msg: IncomingMessage) -> InboundResult:
            bot.received.append(msg)
            return InboundResult()

        if start:
            await adapter.start(sink)
        cleanups.append((adapter, server, session))
        return bot

    yield build
    for adapter, server, session in cleanups:
        await adapter.stop()
        await server.close()
        await session.close()


async def test_url_verification_official_v2(make_bot: MakeBot) -> None:
    bot = await make_bot()
    status, body = await bot.get("/wecom/callback", V2_QUERY)
    assert (status, body) == (200, "1616140317555161061")  # bare: no quotes, no newline


async def test_url_verification_literal_plus_is_not_a_space(make_bot: MakeBot) -> None:
    bot = await make_bot()
    literal_plus = V2_QUERY.replace("%2B", "+")  # unquote_plus / yarl would turn these into spaces
    assert "+" in literal_plus
    assert await bot.get("/wecom/callback", literal_plus) == (200, "1616140317555161061")


async def test_url_verification_v3_keys_and_failures(make_bot: MakeBot) -> None:
    bot = await make_bot(
        _settings(
            token="hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", encoding_aes_key=ROBOT_KEY, corp_id="ww1436e0e65a779aee"
        )
    )
    echostr = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
    query = CallbackDriver.query(
        msg_signature="012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
        timestamp="1476416373",
        nonce="47744683",
        echostr=echostr,
    )
    assert await bot.get("/wecom/callback", query) == (200, "1288432023552776189")
    assert (await bot.get("/wecom/callback", query.replace("47744683", "47744684")))[0] == 403
    assert (await bot.get("/wecom/callback", "timestamp=1&nonce=2"))[0] == 400
    other_corp = await make_bot(_settings(corp_id="wwsomeoneelse"))
    assert (await other_corp.get("/wecom/callback", V2_QUERY))[0] == 403  # receive id mismatch, not 500


async def test_official_v1_post_via_route(make_bot: MakeBot) -> None:
    bot = await make_bot()
    async with bot.session.post(yarl_url(f"{bot.base}/wecom/callback?{V1_QUERY}"), data=V1_ENVELOPE) as resp:
        assert resp.status == 200 and await resp.read() == b""
    [msg] = await bot.settled()
    assert (msg.sender_id, msg.text, msg.message_id) == ("mycreate", "hello", "218:4561255354251345929")
    assert msg.conversation_kind is ConversationKind.DIRECT and msg.conversation_id == "mycreate"


async def test_valid_text_acks_empty_and_sinks_once(make_bot: MakeBot) -> None:
    bot = await make_bot()
    attempts = await bot.app_driver().send_text("zhangsan", "党费 50", msg_id="123456789")
    assert [(a.status, a.body) for a in attempts] == [(200, "")]
    [msg] = await bot.settled()
    assert (msg.sender_id, msg.text, msg.message_id) == ("zhangsan", "党费 50", "218:123456789")


async def test_redelivered_message_keeps_its_id(make_bot: MakeBot) -> None:
    bot = await make_bot()
    attempts = await bot.app_driver().send_text("lisi", "到", msg_id="4561255354251345929", attempts=4)
    assert [a.status for a in attempts] == [200] * 4
    received = await bot.settled()
    # Each valid delivery is handed on (the core dedupes by message_id), and the id never changes.
    assert len(received) == 4 and {m.message_id for m in received} == {"218:4561255354251345929"}


async def test_not_started_answers_503_and_wecom_retries(make_bot: MakeBot) -> None:
    bot = await make_bot(start=False)
    attempts = await bot.app_driver().send_text("lisi", "到", msg_id="77")
    assert [a.status for a in attempts] == [503] * 4  # 1 delivery + 3 retries, like WeCom


async def test_ack_does_not_wait_for_the_core(make_bot: MakeBot) -> None:
    # The callback waits at most ack_wait_seconds for the core (to turn storage trouble into a 503).
    bot = await make_bot(_settings().model_copy(update={"ack_wait_seconds": 0.2}), start=False)
    release = asyncio.Event()

    async def slow_sink(msg: IncomingMessage) -> InboundResult:
        await release.wait()
        bot.received.append(msg)
        return InboundResult()

    await bot.adapter.start(slow_sink)
    started = time.monotonic()
    # The sink never finishes before release: any 200 proves the ack did not wait for it. The generous
    # client timeout only keeps a busy CI machine from turning a slow 200 into a retry.
    attempts = await bot.app_driver(timeout=5.0).send_text("lisi", "请假 出差")
    assert [a.status for a in attempts] == [200] and time.monotonic() - started < 5.0
    release.set()
    assert [m.text for m in await bot.settled()] == ["请假 出差"]


def _bad_padding_encrypt() -> str:
    key = base64.b64decode(V1_KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(b"B" * 63 + b"\x30") + enc.finalize()).decode()  # pad byte 48 > 32


async def test_rejections_then_keeps_serving(make_bot: MakeBot) -> None:
    bot = await make_bot()
    driver = bot.app_driver()
    query, body = driver.signed("<xml><MsgType>text</MsgType></xml>")
    tampered = query.replace("msg_signature=", "msg_signature=0")
    assert (await driver.post(tampered, body)).status == 403

    wrong_corp = CallbackDriver.for_app(bot.session, bot.base, V1_TOKEN, V1_KEY, "wwnotourcorp")
    assert [a.status for a in await wrong_corp.send_text("x", "y", attempts=1)] == [403]

    bad = _bad_padding_encrypt()
    ts, nonce = "1700000000", "5"
    q = CallbackDriver.query(msg_signature=spec_sign(V1_TOKEN, ts, nonce, bad), timestamp=ts, nonce=nonce)
    status = (await driver.post(q, f"<xml><Encrypt><![CDATA[{bad}]]></Encrypt></xml>".encode())).status
    assert status is not None and 400 <= status < 500

    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>'
    assert (await driver.post(query, bomb)).status == 400
    inner_doctype = (
        '<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>'
    )
    assert (await driver.post(*driver.signed(inner_doctype))).status == 400

    assert (await driver.post(query, b"<xml>" + b"x" * (1024 * 1024) + b"</xml>")).status == 413

    attempts = await driver.send_text("wangwu", "已完成", msg_id="888")
    assert [a.status for a in attempts] == [200]
    assert [m.message_id for m in await bot.settled()] == ["218:888"]


async def test_smart_robot_route(make_bot: MakeBot) -> None:
    bot = await make_bot()
    robot = CallbackDriver.for_robot(bot.session, bot.base, ROBOT_TOKEN, ROBOT_KEY)
    echo = await robot.verify_url("8730516382")
    assert (echo.status, echo.body) == (200, "8730516382")
    url = "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC1"
    attempts = await robot.send_robot_text(
        "MSG-1", "zhangsan", "@党建助手 已学习", url, chatid="wrkSFfCgAAAA"
    )
    assert [(a.status, a.body) for a in attempts] == [(200, "")]
    [msg] = await bot.settled()
    assert msg.conversation_kind is ConversationKind.GROUP and msg.conversation_id == "wrkSFfCgAAAA"
    assert msg.text == "已学习" and msg.message_id == "MSG-1" and msg.reply_handle["response_url"] == url

    # The app's keys (or a corp id as receive id) do not open the robot's door.
    app_keys = CallbackDriver.for_robot(bot.session, bot.base, V1_TOKEN, V1_KEY)
    assert [a.status for a in await app_keys.send_robot_text("M2", "u", "x", url, attempts=1)] == [403]
    corp_id = CallbackDriver(
        bot.session, bot.base + "/wecom/robot", ROBOT_TOKEN, ROBOT_KEY, V1_CORP, json_envelope=True
    )
    assert [a.status for a in await corp_id.send_robot_text("M3", "u", "x", url, attempts=1)] == [403]


async def test_unconfigured_callbacks_are_503(make_bot: MakeBot) -> None:
    bot = await make_bot(_settings(robot_token="", robot_encoding_aes_key="", token=""))
    assert (await bot.get("/wecom/callback", V2_QUERY))[0] == 503
    encrypt = spec_encrypt(ROBOT_KEY, "", "{}")
    assert (
        await bot.get(
            "/wecom/robot", CallbackDriver.query(msg_signature="x", timestamp="1", nonce="1", echostr=encrypt)
        )
    )[0] == 503


@pytest.mark.parametrize("path", ["/wecom/callback", "/wecom/robot"])
async def test_missing_query_params_are_400(make_bot: MakeBot, path: str) -> None:
    bot = await make_bot()
    async with bot.session.post(f"{bot.base}{path}", data=b"<xml/>") as resp:
        assert resp.status == 400
