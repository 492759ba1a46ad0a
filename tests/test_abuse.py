"""Abuse tests: forged and replayed callbacks, stale timestamps, oversized and malformed bodies, XML bombs,
injection attempts, cross-branch snooping, and a bounded fuzz of every inbound endpoint.

Every attempt must be rejected (4xx) or answered safely, nothing harmful may be stored, and the bot must
keep serving. Each test tallies its attempts; the last test prints the table used in docs/benchmarks.md
(and writes it to test-artifacts/abuse-counts.md).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy import text as sql_text

from bot.clock import FakeClock
from bot.db.tables import Campaign, InboundMessage, Member, Org, OutboxMessage, Response
from tests.conftest import START, Running, start_bot, stop_bot
from tests.fakes.dingtalk_server import FakeDingTalk, signed_callback
from tests.fakes.wecom_server import (
    CallbackDriver,
    FakeWeCom,
    app_text_xml,
    yarl_url,
)

ROOT = Path(__file__).resolve().parent.parent
ZHANG_SAN, SECRETARY1 = "13800000003", "13800000001"  # 张三 (member), 王建国 (书记) of 第一党支部
BRANCH2_NAMES = ("孙丽", "周强", "吴敏", "郑华")  # 第二党支部
WECOM_TOKEN, WECOM_AES = "abuseToken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
LOCAL_API = "/api/local/messages"
CJK = re.compile(r"[\u4e00-\u9fff]")

# kind -> [attempts, rejected or answered safely]
TALLY: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])


def tally(kind: str, ok: bool) -> None:
    TALLY[kind][0] += 1
    TALLY[kind][1] += int(ok)


# --- the bot under attack: local chat + DingTalk HTTP mode + WeCom app callback ----------------------


class Rig:
    def __init__(self, running: Running, clock: FakeClock, dingtalk: FakeDingTalk, wecom: FakeWeCom,
                 http: aiohttp.ClientSession) -> None:
        self.running, self.clock, self.dingtalk, self.wecom, self.http = running, clock, dingtalk, wecom, http
        self.base = str(running.client.make_url("")).rstrip("/")
        self.driver = CallbackDriver.for_app(http, self.base, WECOM_TOKEN, WECOM_AES, wecom.corp_id,
                                             agent_id=str(wecom.agent_id))
        self._seq = 0

    @property
    def app(self) -> Any:
        return self.running.app

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq}"

    async def dingtalk_post(self, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        async with self.http.post(f"{self.base}/dingtalk/callback", data=raw, headers=headers) as resp:
            return resp.status, await resp.text()

    async def dingtalk_signed(self, body: dict[str, Any] | bytes, *, ts: int | None = None) -> tuple[int, str]:
        headers, raw = signed_callback(body, self.dingtalk.app_secret, self.now_ms() if ts is None else ts)
        return await self.dingtalk_post(raw, headers)

    async def local(self, sender: str, text: str, conversation: str | None = None) -> dict[str, Any]:
        body = {"conversation_id": conversation or f"dm:{sender}", "sender_id": sender, "text": text}
        raw = json.dumps(body, ensure_ascii=False).encode()  # UTF-8, as the chat page sends it
        resp = await self.running.client.post(LOCAL_API, data=raw, headers={"Content-Type": "application/json"})
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        await self.app.flush_outbox()
        return data

    async def settle(self) -> None:
        from bot.message import Platform

        tasks = self.app.adapters[Platform.DINGTALK]._tasks
        deadline = time.monotonic() + 10
        while len(tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.app.adapters[Platform.WECOM].drain()

    async def count(self, model: Any, *where: Any) -> int:
        async with self.app.sessions() as session:
            stmt = select(func.count()).select_from(model)
            for clause in where:
                stmt = stmt.where(clause)
            return int((await session.execute(stmt)).scalar_one())

    async def still_serving(self) -> None:
        """A normal message still gets its answer after the abuse."""
        data = await self.running.say(f"dm:{ZHANG_SAN}", ZHANG_SAN, "我的")
        assert data["replies"] and CJK.search(data["replies"][0]["text"]), data
        resp = await self.running.client.get("/healthz")
        assert resp.status == 200


def dt_message(msg_id: str, staff_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": text}, "msgId": msg_id, "conversationType": "1",
            "conversationId": f"cid-{staff_id}", "senderStaffId": staff_id, "isInAtList": True} | extra


async def make_rig(settings_factory: Any, clock: FakeClock) -> tuple[Rig, list[Any]]:
    dingtalk = await FakeDingTalk(clock=clock).__aenter__()
    wecom = await FakeWeCom(clock=clock).__aenter__()
    settings_obj = await settings_factory(
        dingtalk={"enabled": True, "mode": "http", "app_key": dingtalk.app_key, "app_secret": dingtalk.app_secret,
                  "api_base": dingtalk.base_url, "oapi_base": dingtalk.base_url, "public_url": "http://127.0.0.1",
                  "qps": 1000},
        wecom={"enabled": True, "corp_id": wecom.corp_id, "agent_id": str(wecom.agent_id), "secret": wecom.secret,
               "token": WECOM_TOKEN, "encoding_aes_key": WECOM_AES, "api_base": wecom.base_url},
    )
    running = await start_bot(settings_obj, clock)
    async with running.app.sessions() as session, session.begin():
        await session.execute(update(Member).where(Member.mobile == ZHANG_SAN)
                              .values(dingtalk_userid="dt-zhangsan", wecom_userid="zhangsan"))
    http = aiohttp.ClientSession()
    return Rig(running, clock, dingtalk, wecom, http), [http, running, wecom, dingtalk]


async def close_rig(parts: list[Any]) -> None:
    http, running, wecom, dingtalk = parts
    await http.close()
    await stop_bot(running)
    await wecom.__aexit__(None, None, None)
    await dingtalk.__aexit__(None, None, None)


@pytest.fixture
async def rig(settings_factory: Any, clock: FakeClock) -> AsyncIterator[Rig]:
    made, parts = await make_rig(settings_factory, clock)
    try:
        yield made
    finally:
        await close_rig(parts)


# --- DingTalk: signatures, replays, timestamps --------------------------------------------------------


async def test_forged_dingtalk_signatures_are_401(rig: Rig) -> None:
    ts = rig.now_ms()
    good_headers, raw = signed_callback(dt_message("forged-1", "dt-zhangsan", "党费 50"), rig.dingtalk.app_secret, ts)
    forged = [
        signed_callback(b"", "wrong secret", ts)[0]["sign"],
        signed_callback(b"", rig.dingtalk.app_secret, ts + 1)[0]["sign"],  # another timestamp's sign
        base64.b64encode(b"\0" * 32).decode(), "", " ", "A" * 10_000, "签名伪造", "%00%0a",
        good_headers["sign"][:-2], good_headers["sign"].lower(), good_headers["sign"] + "=",
    ]
    for sign in forged:
        status, _ = await rig.dingtalk_post(raw, {"timestamp": str(ts), "sign": sign})
        # A 10 KB header is refused by the HTTP parser itself (400) before our check (401).
        ok = status == 401 or (status == 400 and len(sign) > 8000)
        tally("DingTalk forged signature", ok)
        assert ok, (status, sign[:40])
    for headers in ({}, {"timestamp": str(ts)}, {"sign": good_headers["sign"]}):
        status, _ = await rig.dingtalk_post(raw, headers)
        tally("DingTalk forged signature", status == 401)
        assert status == 401
    await rig.settle()
    assert await rig.count(InboundMessage, InboundMessage.message_id == "forged-1") == 0
    await rig.still_serving()


async def test_timestamps_outside_the_window_are_401(rig: Rig) -> None:
    now = rig.now_ms()
    body = dt_message("stale-1", "dt-zhangsan", "党费 50")
    for ts in (now - 3_601_000, now + 3_601_000, now - 86_400_000 * 30, 0, -1, 10**30):
        status, _ = await rig.dingtalk_signed(body, ts=ts)
        tally("DingTalk timestamp outside window", status == 401)
        assert status == 401, ts
    for bad in ("", "abc", "1e12", "١٢٣"):  # not an integer (the last is Arabic-Indic digits)
        status, _ = await rig.dingtalk_post(json.dumps(body).encode(), {"timestamp": bad, "sign": "x"})
        tally("DingTalk timestamp outside window", status == 401)
        assert status == 401, bad
    await rig.settle()
    assert await rig.count(InboundMessage, InboundMessage.message_id == "stale-1") == 0
    await rig.still_serving()


async def test_replayed_dingtalk_callbacks_are_stored_once(rig: Rig) -> None:
    headers, raw = signed_callback(dt_message("replay-1", "dt-zhangsan", "党费 50"), rig.dingtalk.app_secret,
                                   rig.now_ms())
    for _ in range(10):  # a captured request replayed verbatim inside the window
        status, _ = await rig.dingtalk_post(raw, headers)
        tally("DingTalk replayed request (same message id)", status == 200)
        assert status == 200
    await rig.settle()
    assert await rig.count(InboundMessage, InboundMessage.message_id == "replay-1") == 1
    responses = await rig.count(Response)
    assert responses == 1
    # The same capture replayed after the window: refused.
    rig.clock.advance(dt.timedelta(hours=2))
    for _ in range(3):
        status, _ = await rig.dingtalk_post(raw, headers)
        tally("DingTalk replay after the window", status == 401)
        assert status == 401
    await rig.settle()
    assert await rig.count(InboundMessage, InboundMessage.message_id == "replay-1") == 1
    await rig.still_serving()


async def test_header_replay_with_a_new_body_is_a_known_protocol_limit(rig: Rig) -> None:
    """DingTalk signs ``timestamp + secret`` only, not the body: captured headers can carry another body
    inside the window. Documented here (and in docs/benchmarks.md); the window is the only bound."""
    headers, _ = signed_callback(b"", rig.dingtalk.app_secret, rig.now_ms())
    raw = json.dumps(dt_message("replay-new-body", "dt-zhangsan", "我的")).encode()
    status, _ = await rig.dingtalk_post(raw, headers)
    assert status == 200
    tally("DingTalk captured headers + new body, inside window (accepted: sign covers no body)", False)
    await rig.settle()


# --- oversized, malformed, bombs -------------------------------------------------------------------


async def _chunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_oversized_bodies_are_413(rig: Rig) -> None:
    big = b"x" * (1024 * 1024)
    cases = []
    headers, _ = signed_callback(b"", rig.dingtalk.app_secret, rig.now_ms())
    cases.append(("DingTalk 1 MB", f"{rig.base}/dingtalk/callback", big, headers))
    cases.append(("DingTalk chunked 200 KB", f"{rig.base}/dingtalk/callback", _chunks(b"{" * 200_000), headers))
    query, _ = rig.driver.signed("<xml/>")
    cases.append(("WeCom 1 MB", yarl_url(f"{rig.base}/wecom/callback?{query}"), b"<xml>" + big + b"</xml>", {}))
    cases.append(("WeCom chunked 200 KB", yarl_url(f"{rig.base}/wecom/callback?{query}"), _chunks(b"<" * 200_000), {}))
    local = json.dumps({"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": ZHANG_SAN, "text": "5" * 1_000_000})
    cases.append(("local 1 MB", f"{rig.base}{LOCAL_API}", local.encode(), {"Content-Type": "application/json"}))
    cases.append(("local chunked 1 MB", f"{rig.base}{LOCAL_API}", _chunks(local.encode()), {}))
    before = await rig.count(InboundMessage)
    for name, url, data, hdrs in cases:
        async with rig.http.post(url, data=data, headers=hdrs) as resp:
            tally("oversized body", resp.status == 413)
            assert resp.status == 413, (name, resp.status)
    # Unsigned and oversized: the signature is checked first (401, body never read).
    async with rig.http.post(f"{rig.base}/dingtalk/callback", data=big) as resp:
        tally("oversized body", resp.status == 401)
        assert resp.status == 401
    assert await rig.count(InboundMessage) == before
    await rig.still_serving()


NESTED = b"[" * 60_000  # under every body limit, deeper than Python's recursion limit


async def test_malformed_json_is_4xx(rig: Rig) -> None:
    bad = [b"{", b"[]", b"null", b'"x"', b"1e999999", b"\xff\xfe\x00", b"", NESTED, b'{"a":' * 5000,
           json.dumps({"msgId": 5}).encode(), json.dumps({"msgId": "m", "conversationType": "9"}).encode(),
           json.dumps({"msgId": "m", "conversationType": "1"}).encode(),  # no sender
           json.dumps({"msgId": "m", "conversationType": "2", "senderStaffId": "x"}).encode(),  # no conversation
           json.dumps(dt_message("m", "dt-zhangsan", "x", createAt="yesterday")).encode()]
    for raw in bad:
        status, _ = await rig.dingtalk_signed(raw)
        tally("malformed JSON (DingTalk, signed)", status == 400)
        assert status == 400, raw[:40]
    for raw in bad[:9]:
        async with rig.http.post(f"{rig.base}{LOCAL_API}", data=raw) as resp:
            tally("malformed JSON (local chat API)", resp.status == 400)
            assert resp.status == 400, raw[:40]
    query, _ = rig.driver.signed("<xml/>")
    for raw in (b"{", NESTED.replace(b"[", b"{"), b'{"encrypt": 5}', b'{"encrypt": ""}', b"[" + NESTED):
        status = (await rig.driver.post(query, b" " + raw if raw.startswith(b"[") else raw)).status
        tally("malformed JSON (WeCom envelope)", status == 400)
        assert status == 400, raw[:40]
    async with rig.http.post(f"{rig.base}/wecom/callback?{query}", data=b"{" + NESTED) as resp:
        assert resp.status == 400
    await rig.still_serving()


async def test_overlong_ids_are_refused_or_dropped_never_5xx(rig: Rig) -> None:
    """Ids longer than their columns: PostgreSQL refuses them (SQLite would not). A 5xx would make the
    platform redeliver a message that can never be stored, forever."""
    for body in ({"conversation_id": "group:" + "党" * 300, "sender_id": ZHANG_SAN, "text": "党费 50"},
                 {"conversation_id": "dm:" + "x" * 300, "sender_id": "x" * 300, "text": "党费 50"},
                 {"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": ZHANG_SAN, "text": "x", "message_id": "m" * 300}):
        async with rig.http.post(f"{rig.base}{LOCAL_API}", data=json.dumps(body).encode()) as resp:
            tally("overlong ids", resp.status == 400)
            assert resp.status == 400, (resp.status, await resp.text())
    for msg_id, staff in (("d" * 300, "dt-zhangsan"), ("long-staff", "s" * 300), ("long-both", "z" * 5000)):
        status, _ = await rig.dingtalk_signed(dt_message(msg_id, staff, "党费 50"))
        tally("overlong ids", status == 200)
        assert status == 200, status
    await rig.settle()
    assert await rig.count(Response) <= 1  # SQLite keeps the over-long msgId (no length check), PostgreSQL drops it
    await rig.still_serving()


XML_BOMBS = {
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;'
                      b'&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'
                      b'&lol2;&lol2;&lol2;">]><xml><Encrypt>&lol3;</Encrypt></xml>',
    "external entity (XXE)": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                             b"<xml><Encrypt>&e;</Encrypt></xml>",
    "parameter entity": b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><xml/>',
    "quadratic blowup": b'<!DOCTYPE x [<!ENTITY a "' + b"A" * 30_000 + b'">]><xml><Encrypt>'
                        + b"&a;" * 5000 + b"</Encrypt></xml>",
    "external DTD": b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml><Encrypt>x</Encrypt></xml>',
    "deep nesting": b"<a>" * 5000 + b"</a>" * 5000,
    "undefined entity": b"<xml><Encrypt>&nope;</Encrypt></xml>",
}
MALFORMED_XML = [b"<xml>", b"<<>>", b"\xff\xfe<xml/>", b"<xml><Encrypt></Encrypt></xml>", b"<xml/>", b"",
                 b"<xml><Encrypt>not base64!</Encrypt></xml>", b"<xml><Encrypt><![CDATA[" + b"A" * 64 + b"]]></Encrypt>"]


async def test_xml_bombs_and_malformed_xml_are_4xx_and_fast(rig: Rig) -> None:
    query, _ = rig.driver.signed("<xml/>")
    for name, bomb in XML_BOMBS.items():
        started = time.monotonic()
        status = (await rig.driver.post(query, bomb)).status
        tally("XML entity bomb / XXE / DTD", status is not None and 400 <= status < 500)
        assert status is not None and 400 <= status < 500, (name, status)
        assert time.monotonic() - started < 1.0, name
    # A bomb inside a correctly signed and encrypted payload: refused after decryption.
    for name in ("billion laughs", "external entity (XXE)"):
        status = (await rig.driver.post(*rig.driver.signed(XML_BOMBS[name].decode()))).status
        tally("XML entity bomb / XXE / DTD", status == 400)
        assert status == 400, name
    for raw in MALFORMED_XML:
        status = (await rig.driver.post(query, raw)).status
        tally("malformed XML (WeCom)", status is not None and 400 <= status < 500)
        assert status is not None and 400 <= status < 500, (raw[:30], status)
    # Signed garbage plaintext, and a forged signature.
    for plain in ("<xml><MsgType>text", "not xml at all"):
        status = (await rig.driver.post(*rig.driver.signed(plain))).status
        tally("malformed XML (WeCom)", status is not None and 400 <= status < 500)
        assert status is not None and 400 <= status < 500
    for plain in ("<xml></xml>", "<xml><MsgType>event</MsgType><Event>enter_agent</Event></xml>"):
        status = (await rig.driver.post(*rig.driver.signed(plain))).status  # valid but nothing to handle
        tally("malformed XML (WeCom)", status == 200)
        assert status == 200
    q2, body = rig.driver.signed(app_text_xml(rig.wecom.corp_id, str(rig.wecom.agent_id), "zhangsan", "党费 50",
                                              "77", 1))
    for tampered in (q2.replace("msg_signature=", "msg_signature=0"), q2.replace("nonce=", "nonce=1")):
        status = (await rig.driver.post(tampered, body)).status
        tally("WeCom forged signature", status == 403)
        assert status == 403
    await rig.settle()
    assert await rig.count(InboundMessage, InboundMessage.platform == "wecom") == 0
    await rig.still_serving()


async def test_replayed_wecom_message_is_stored_once(rig: Rig) -> None:
    attempts = await rig.driver.send_text("zhangsan", "党费 50", msg_id="4242", attempts=5)
    assert [a.status for a in attempts] == [200] * 5
    await rig.settle()
    stored = await rig.count(InboundMessage, InboundMessage.platform == "wecom")
    for _ in attempts:
        tally("WeCom replayed message (same MsgId)", stored == 1)
    assert stored == 1 and await rig.count(Response) == 1


# --- injection attempts and snooping ---------------------------------------------------------------


INJECTIONS = [
    "党费 50'); DROP TABLE members;--",
    "50; DELETE FROM responses WHERE 1=1;--",
    "' OR '1'='1",
    "党费 50 $(rm -rf /)",
    "`reboot`",
    "<script>alert(1)</script>",
    "{{7*7}} ${7*7} %s%s%s%n",
    "../../../../etc/passwd",
    "\x00\x1b[2J\u202e党费 50",
    "/export; DROP TABLE outbox",
    "/stats 第二党支部' OR 1=1 --",
]


async def table_counts(rig: Rig) -> dict[str, int]:
    return {m.__tablename__: await rig.count(m) for m in (Member, Org, Campaign)}


async def test_injection_attempts_store_nothing_harmful(rig: Rig) -> None:
    before = await table_counts(rig)
    for i, attack in enumerate(INJECTIONS):
        data = await rig.local(ZHANG_SAN, attack)
        ok = bool(data["replies"]) and all(CJK.search(r["text"]) for r in data["replies"])
        # Through DingTalk too: the same text as a signed callback.
        status, _ = await rig.dingtalk_signed(dt_message(f"inj-{i}", "dt-zhangsan", attack))
        tally("injection text (SQL/shell/template)", ok and status == 200)
        assert ok and status == 200, (attack, data)
    await rig.settle()
    assert await table_counts(rig) == before  # tables intact, nothing dropped or added
    async with rig.app.sessions() as session:
        # The tables are all still there, and a stored answer (if any) is just the member's own data.
        for table in ("members", "responses", "outbox", "inbound_log"):
            await session.execute(sql_text(f"SELECT count(*) FROM {table}"))
        values = (await session.execute(select(Response.values, Response.amount_fen))).all()
    for stored, amount in values:
        assert amount is None or 0 < amount <= 100_000_00, (stored, amount)
    await rig.still_serving()


async def test_export_from_a_member_is_refused(rig: Rig) -> None:
    for command in ("/export", "/export 党费 2026", "导出 党费", "台账", "/export 党费 第二党支部"):
        data = await rig.local(ZHANG_SAN, command)
        texts = " ".join(r["text"] for r in data["replies"])
        ok = "抱歉" in texts or "仅" in texts
        tally("privileged command from a member (/export)", ok)
        assert ok, (command, texts)
    files = await rig.count(OutboxMessage, OutboxMessage.payload["format"].as_string() == "file")
    assert files == 0
    await rig.still_serving()


async def test_another_branchs_data_is_not_shown(rig: Rig) -> None:
    attempts = [
        (ZHANG_SAN, "/stats 第二党支部"), (ZHANG_SAN, "统计 党费 第二党支部"), (ZHANG_SAN, "/missing 第二党支部"),
        (SECRETARY1, "/stats 第二党支部"), (SECRETARY1, "/missing 第二党支部"), (SECRETARY1, "/export 党费 第二党支部"),
        (SECRETARY1, "统计 党费 机关党委/第二党支部"), (SECRETARY1, "/stats 机关党委"),
    ]
    for sender, command in attempts:
        data = await rig.local(sender, command)
        texts = "\n".join(r["text"] for r in data["replies"])
        leaked = [n for n in BRANCH2_NAMES if n in texts] + (["第二党支部："] if "第二党支部：" in texts else [])
        tally("another branch's data (/stats 第二党支部 from 第一党支部)", not leaked and bool(texts))
        assert texts and not leaked, (sender, command, texts)
    files = await rig.count(OutboxMessage, OutboxMessage.payload["format"].as_string() == "file")
    assert files == 0
    await rig.still_serving()


async def test_ten_thousand_emoji_get_a_polite_answer(rig: Rig) -> None:
    flood = "😀" * 10_000
    data = await rig.local(ZHANG_SAN, flood)
    text = " ".join(r["text"] for r in data["replies"])
    tally("10,000 emoji", "太长" in text)
    assert "太长" in text, text
    status, _ = await rig.dingtalk_signed(dt_message("emoji-1", "dt-zhangsan", flood))
    tally("10,000 emoji", status == 200)
    assert status == 200
    await rig.settle()
    async with rig.app.sessions() as session:
        stored = (await session.execute(select(InboundMessage.text))).scalars().all()
    assert all(len(t) <= 4000 for t in stored)
    assert await rig.count(Response) == 0
    await rig.still_serving()


# --- bounded fuzz of the three inbound endpoints (hypothesis) --------------------------------------

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)
robot_like = st.fixed_dictionaries(
    {}, optional={
        "msgId": st.text(max_size=20) | st.integers(), "conversationType": st.sampled_from(["1", "2", 1, 2, "3", None]),
        "conversationId": st.text(max_size=20), "senderStaffId": st.sampled_from(["dt-zhangsan", "", "x"]) | st.text(max_size=10),
        "text": st.fixed_dictionaries({"content": st.text(max_size=60)}) | json_values,
        "content": json_values, "createAt": json_values, "atUsers": json_values, "isInAtList": json_values,
        "sessionWebhook": st.text(max_size=30), "sessionWebhookExpiredTime": json_values,
        "errorCode": json_values, "msgtype": st.text(max_size=8),
    },
)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


def _run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return loop.run_until_complete(asyncio.wait_for(coro, 30))


def test_fuzz_inbound_endpoints_never_5xx(settings_factory: Any) -> None:
    """60 examples per endpoint: DingTalk (random bodies and headers, signed or not), WeCom (random XML and
    query, signed or not), local chat API (random JSON). Never a 5xx, never a crash, still serving."""
    loop = asyncio.new_event_loop()
    clock = FakeClock(START)
    made, parts = _run(loop, make_rig(settings_factory, clock))
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    try:
        @FUZZ
        @given(body=st.one_of(robot_like.map(lambda d: json.dumps(d).encode()), st.binary(max_size=300),
                              json_values.map(lambda v: json.dumps(v).encode())),
               signed=st.booleans(), skew_ms=st.sampled_from([0, 5_000, -5_000, 4_000_000]),
               extra=st.dictionaries(st.sampled_from(["timestamp", "sign", "Content-Type"]), header_text, max_size=2))
        def fuzz_dingtalk(body: bytes, signed: bool, skew_ms: int, extra: dict[str, str]) -> None:
            if signed:
                headers, raw = signed_callback(body, made.dingtalk.app_secret, made.now_ms() + skew_ms)
            else:
                headers, raw = dict(extra), body
            status, _ = _run(loop, made.dingtalk_post(raw, headers))
            statuses[("DingTalk callback", status)] += 1
            tally("fuzz: DingTalk callback (random body/headers)", status < 500)
            assert status < 500, (status, body[:80], headers)

        @FUZZ
        @given(plain=st.one_of(st.text(max_size=200), st.builds(
                   lambda c, u, m: app_text_xml(made.wecom.corp_id, str(made.wecom.agent_id), u, c, m, 1),
                   st.text(max_size=50), st.text(max_size=12), st.text(max_size=12))),
               signed=st.booleans(), junk_body=st.binary(max_size=200),
               query=st.dictionaries(st.sampled_from(["msg_signature", "timestamp", "nonce", "echostr", "x"]),
                                     header_text, max_size=4))
        def fuzz_wecom(plain: str, signed: bool, junk_body: bytes, query: dict[str, str]) -> None:
            if signed:
                q, body = made.driver.signed(plain.replace("\x00", ""))
            else:
                q, body = CallbackDriver.query(**query), junk_body
            status = _run(loop, made.driver.post(q, body)).status
            statuses[("WeCom callback", status or 0)] += 1
            tally("fuzz: WeCom callback (random XML/query)", status is not None and status < 500)
            assert status is not None and status < 500, (status, plain[:80], query)

        @FUZZ
        @given(body=st.one_of(
            st.fixed_dictionaries({"conversation_id": st.sampled_from([f"dm:{ZHANG_SAN}", "group:第一党支部", "dm:x", ""])
                                   | json_values, "sender_id": st.sampled_from([ZHANG_SAN, SECRETARY1, ""]) | json_values,
                                   "text": st.text(max_size=120) | json_values},
                                  optional={"message_id": st.text(max_size=20) | json_values}),
            json_values))
        def fuzz_local(body: Any) -> None:
            async def post() -> int:
                async with made.http.post(f"{made.base}{LOCAL_API}", data=json.dumps(body).encode()) as resp:
                    await resp.read()
                    return resp.status

            status = _run(loop, post())
            statuses[("local chat API", status)] += 1
            tally("fuzz: local chat API (random JSON)", status < 500)
            assert status < 500, (status, body)

        fuzz_dingtalk()
        fuzz_wecom()
        fuzz_local()
        _run(loop, made.settle())
        _run(loop, made.still_serving())
        print("\nfuzz statuses:", dict(sorted(statuses.items())))
    finally:
        _run(loop, close_rig(parts))
        loop.close()


# --- the table ---------------------------------------------------------------------------------------


def test_zz_abuse_counts_table() -> None:
    """Prints (and saves) the counts table for docs/benchmarks.md; runs last in this module."""
    if not TALLY:
        pytest.skip("no abuse test ran in this session")
    lines = ["| attempt | count | rejected or answered safely |", "|---|---:|---:|"]
    for kind, (attempts, ok) in TALLY.items():
        lines.append(f"| {kind} | {attempts} | {ok} |")
    total = sum(a for a, _ in TALLY.values())
    safe = sum(o for _, o in TALLY.values())
    lines.append(f"| **total** | **{total}** | **{safe}** |")
    table = "\n".join(lines)
    print("\n" + table)
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "abuse-counts.md").write_text(table + "\n", encoding="utf-8")
