"""Issue 5 end to end: the whole bot (BotApp, real database and KV, outbox, scheduler runner) with DingTalk
enabled, talking to the fake DingTalk open platform over real HTTP, in both receive modes:

- ``http``: robot messages are signed POSTs to the bot's own ``/dingtalk/callback``;
- ``stream``: the bot holds a websocket to the fake gateway, which pushes (and re-pushes) frames.

Nothing of ours is mocked; time is the FakeClock shared by the bot and the fake. Members of the demo
roster get DingTalk user ids ``user<last two digits of the mobile>``; the group ``cidGroup1==`` is bound to
第一党支部 through ``[[groups]]`` (with a custom robot registered on the fake, unless a test says otherwise).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.clock import SHANGHAI, FakeClock
from bot.db.orgs import find_org
from bot.db.tables import InboundMessage, Member, OutboxMessage, Response
from bot.message import Platform
from bot.platforms.dingtalk.adapter import DingTalkAdapter
from schedules.runner import RunReport
from schedules.spec import DEFAULT_SCHEDULES
from tests.conftest import Running, start_bot, stop_bot
from tests.fakes.dingtalk_server import FakeDingTalk, sample_bot_message, signed_callback

G1 = "cidGroup1=="  # the DingTalk group of 第一党支部
ROBOT_SECRET = "SECe2e-robot-secret"
DEC1_0900 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)  # December's dues collection opens
ZHANG, LI, SECRETARY, WANGWU, ADMIN = "13800000003", "13800000004", "13800000001", "13800000005", "13800000014"
BRANCH1 = {f"138000000{i:02d}": name for i, name in enumerate(
    ["王建国", "李红梅", "张三", "李四", "王五", "赵六", "陈七", "刘洋"], start=1)}
BRANCH2 = {"13800000011": "孙丽", "13800000012": "周强", "13800000013": "吴敏", "13800000014": "郑华"}
QPS_LIMIT = {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "message": "QPS 超限"}
TOO_FAST = {"code": "send.too.fast", "message": "发送太快"}
ORG_QUOTA = {"code": "Forbidden.AccessDenied.ApiCountLimitForOrg", "message": "企业调用量超限"}
MODES = pytest.mark.parametrize("mode", ["http", "stream"])


def uid(mobile: str) -> str:
    return f"user{mobile[-2:]}"


def only(*keys: str) -> list[dict[str, Any]]:
    """``[[schedules]]`` entries that switch off every default schedule except ``keys``."""
    return [{"key": s.key, "enabled": False} for s in DEFAULT_SCHEDULES if s.key not in keys]


@dataclass
class Env:
    bot: Running
    fake: FakeDingTalk
    clock: FakeClock
    mode: str
    robot_url: str
    _core_seen: int = 0
    _frames: dict[str, str] = field(default_factory=dict)  # msgId -> stream frame id
    # msgId -> the reply DingTalk got in the callback's response (HTTP mode, inline_replies) and posts itself
    inline: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def adapter(self) -> DingTalkAdapter:
        adapter = self.bot.app.adapters[Platform.DINGTALK]
        assert isinstance(adapter, DingTalkAdapter)
        return adapter

    # --- database ---------------------------------------------------------------------------------------

    async def rows(self, stmt: Any) -> list[Any]:
        async with self.bot.app.sessions() as session:
            return list((await session.execute(stmt)).scalars().all())

    async def member(self, mobile: str) -> Member:
        [member] = await self.rows(select(Member).where(Member.mobile == mobile))
        return member

    async def outbox(self, *, reason: str | None = None, platform: str | None = None) -> list[OutboxMessage]:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if reason is not None:
            stmt = stmt.where(OutboxMessage.reason == reason)
        if platform is not None:
            stmt = stmt.where(OutboxMessage.platform == platform)
        return await self.rows(stmt)

    # --- inbound ------------------------------------------------------------------------------------------

    def message(self, mobile: str, text: str, msg_id: str, *, group: bool = True) -> dict[str, Any]:
        """A robot message as DingTalk sends it, with a live session webhook on the fake."""
        url, expires = self.fake.add_session()
        body = sample_bot_message(
            msgId=msg_id, text={"content": text}, senderStaffId=uid(mobile), senderNick=mobile,
            createAt=int(self.clock.now().timestamp() * 1000), robotCode=self.fake.app_key,
            sessionWebhook=url, sessionWebhookExpiredTime=expires, chatbotCorpId="dingcorp01",
        )
        if group:
            body |= {"conversationType": "2", "conversationId": G1, "isInAtList": True}
        else:
            body |= {"conversationType": "1", "conversationId": f"cidP2P{uid(mobile)}==", "atUsers": []}
        return body

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def post_callback(self, raw: bytes, headers: dict[str, str]) -> Any:
        return await self.bot.client.post("/dingtalk/callback", data=raw, headers=headers)

    async def receive(self, body: dict[str, Any]) -> None:
        """Deliver one robot message through the configured mode and wait until the core handled it."""
        if self.mode == "http":
            headers, raw = signed_callback(body, self.fake.app_secret, self._now_ms())
            resp = await self.post_callback(raw, headers)
            assert resp.status == 200
            if (answer := await resp.json()) != {"msgtype": "empty"}:
                assert body["msgId"] not in self.inline  # a redelivery is answered empty
                self.inline[body["msgId"]] = answer
        else:
            frame = await self.fake.push_bot_message(body)
            self._frames[body["msgId"]] = frame
            await self.fake.wait_ack(frame)
        self._core_seen += 1
        await self.settle()

    def said_in_chat(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """What the bot said in the message's chat in answer to it: the reply carried in the callback's
        response (HTTP mode) and the posts to the message's session webhook, in that order."""
        session_id = body["sessionWebhook"].split("session=")[1]
        posts = [m["body"] for m in self.fake.session_messages if m["session"] == session_id]
        return ([self.inline[body["msgId"]]] if body["msgId"] in self.inline else []) + posts

    async def redeliver(self, body: dict[str, Any]) -> None:
        """DingTalk sends the same message again (same msgId)."""
        if self.mode == "http":
            await self.receive(body)  # a second signed POST: only the core's dedup can stop it
            return
        frame = self._frames[body["msgId"]]
        await self.fake.redeliver(frame)  # the same frame: the stream client drops it in-process
        await wait_for(lambda: sum(a["headers"]["messageId"] == frame for a in self.fake.acks) == 2)
        await self.receive(body)  # a re-push under a new frame id: the core's dedup (KV + DB unique)

    async def settle(self) -> None:
        metrics = self.bot.app.metrics

        async def done() -> bool:
            seen = metrics.value("dangjian_messages_in_total", platform="dingtalk")
            return seen >= self._core_seen and (await self.adapter.health()).detail["background_tasks"] == 0

        await wait_for(done)
        await self.bot.app.inline_replies.drain()  # replies carried in callback responses: marked sent

    # --- time and schedules ---------------------------------------------------------------------------

    async def run_at(self, when: dt.datetime) -> RunReport:
        self.clock.set(when)
        report = await self.bot.app.runner.run_due(when)
        await self.bot.app.flush_outbox()
        return report

    async def run_event(self, schedule_key: str, kind: str) -> RunReport:
        """Jump to the next ``kind`` event of ``schedule_key`` and run everything due then."""
        now = self.clock.now()
        due = next(e.due_at for o, e in self.bot.app.runner.plan_window(now, now + dt.timedelta(days=40))
                   if o.schedule_key == schedule_key and e.kind == kind)
        report = await self.run_at(due)
        assert any(k.startswith(f"{schedule_key}|") and f"|{kind}|" in k for k in report.executed), report
        return report

    async def recover(self, rounds: int = 6) -> None:
        """Advance the clock past every next_attempt_at and flush until nothing is pending."""
        for _ in range(rounds):
            if not [r for r in await self.outbox() if r.status == "pending"]:
                return
            self.clock.advance(dt.timedelta(minutes=11))  # > the longest back-off hint (600 s)
            await self.bot.app.flush_outbox()


async def wait_for(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if await result if not isinstance(result, bool) else result:
                return
            await asyncio.sleep(0.01)


MakeEnv = Callable[..., Awaitable[Env]]


@pytest.fixture
async def make_env(settings_factory: Any, clock: FakeClock) -> AsyncIterator[MakeEnv]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(mode: str, *, webhook: bool = True, schedules: list[dict[str, Any]] | None = None,
                       **dingtalk: Any) -> Env:
            fake = await stack.enter_async_context(FakeDingTalk(clock=clock))
            robot_url = fake.add_robot(secret=ROBOT_SECRET) if webhook else ""
            settings = await settings_factory(**{
                "dingtalk": {"enabled": True, "mode": mode, "app_key": fake.app_key, "app_secret": fake.app_secret,
                             "api_base": fake.base_url, "oapi_base": fake.base_url, "qps": 1000,
                             "public_url": "https://bot.example.cn"} | dingtalk,
                "groups": [{"platform": "dingtalk", "conversation_id": G1, "org": "第一党支部",
                            "webhook_url": robot_url, "webhook_secret": ROBOT_SECRET if webhook else ""}],
                "demo.announce_current": False,
                "schedules": schedules or [],
            })
            clock.set(DEC1_0900 - dt.timedelta(minutes=30))
            bot = await start_bot(settings, clock)
            stack.push_async_callback(stop_bot, bot)
            async with bot.app.sessions() as session, session.begin():
                for mobile in [*BRANCH1, *BRANCH2]:
                    await session.execute(update(Member).where(Member.mobile == mobile).values(dingtalk_userid=uid(mobile)))
            if mode == "stream":
                await fake.wait_connections(1)
            return Env(bot, fake, clock, mode, robot_url)

        yield make


NOT_SENDS = ("accessToken", "gettoken", "connections", "connect")  # tokens and the Stream gateway


def sends_since(fake: FakeDingTalk, before: collections.Counter[str]) -> dict[str, int]:
    """Send calls (API and webhooks) made since ``before``; token refreshes after clock jumps left out."""
    return {k: n for k, n in (fake.calls - before).items() if k not in NOT_SENDS}


# --- 1. a member's "@bot 党费 50" in the group: stored once, confirmed privately ------------------------------

@MODES
async def test_group_dues_reply_is_stored_once_and_confirmed_privately(make_env: MakeEnv, mode: str) -> None:
    env = await make_env(mode)
    await env.run_at(DEC1_0900)
    body = env.message(ZHANG, "@党建助手 党费 50", "msgDues50==")
    await env.receive(body)
    await env.redeliver(body)
    await env.bot.app.flush_outbox()

    zhang = await env.member(ZHANG)
    [response] = await env.rows(select(Response).where(Response.member_id == zhang.id))
    assert response.amount_fen == 5000 and response.platform == "dingtalk"
    assert len(await env.rows(select(InboundMessage).where(InboundMessage.message_id == "msgDues50=="))) == 1
    assert env.bot.app.metrics.value("dangjian_messages_duplicate_total", platform="dingtalk") == 1

    # The group gets a note, @-ing the payer, without the amount: in the callback's response (HTTP mode,
    # no call of ours) or through the message's session webhook (Stream mode).
    [note] = env.said_in_chat(body)
    assert (mode == "http") == (body["msgId"] in env.inline)
    assert "详情已私信" in note["text"]["content"] and "50" not in note["text"]["content"]
    assert note["at"]["atUserIds"] == [uid(ZHANG)]
    # The amount goes 1:1 through oToMessages/batchSend, to the payer only, once.
    private = [m for m in env.fake.oto_messages if uid(ZHANG) in m["user_ids"]]
    assert [(m["user_ids"], m["msg_key"]) for m in private] == [([uid(ZHANG)], "sampleText")]
    assert "12月党费收缴" in private[0]["param"]["content"] and "50" in private[0]["param"]["content"]
    # Nothing group-visible carries the amount.
    group_visible = [json.dumps(m["param"], ensure_ascii=False) for m in env.fake.group_messages]
    group_visible += [json.dumps(m["body"], ensure_ascii=False) for m in env.fake.robot_messages]
    assert not [t for t in group_visible if "50元" in t or "50.00" in t]
    assert {r.status for r in await env.outbox(platform="dingtalk")} == {"sent"}


# --- 2. the scheduled announcement reaches the group --------------------------------------------------------

@MODES
async def test_scheduled_dues_announcement_reaches_the_group(make_env: MakeEnv, mode: str) -> None:
    env = await make_env(mode)
    assert env.fake.group_messages == []
    report = await env.run_at(DEC1_0900)
    assert any(k.startswith("dues|2026-12|announce") for k in report.executed)
    dues = [m for m in env.fake.group_messages if "12月党费收缴" in m["param"].get("content", "")]
    assert [(m["conversation_id"], m["msg_key"]) for m in dues] == [(G1, "sampleText")]
    assert "现已开始" in dues[0]["param"]["content"]
    # Role-targeted openings (meeting records) went 1:1, identical texts batched: one call per text.
    assert env.fake.calls["batchSend"] == len({m["param"]["content"] for m in env.fake.oto_messages})
    assert {r.status for r in await env.outbox(platform="dingtalk")} == {"sent"}


# --- 3. nudges reach exactly the missing, in the fewest calls ------------------------------------------------

@MODES
@pytest.mark.parametrize("webhook", [True, False], ids=["custom-robot", "no-webhook"])
async def test_dues_reminder_names_exactly_the_missing_in_one_call(make_env: MakeEnv, mode: str, webhook: bool) -> None:
    env = await make_env(mode, webhook=webhook, schedules=only("dues"))
    await env.run_at(DEC1_0900)
    await env.receive(env.message(ZHANG, "党费 50", "msgPayZhang=="))
    await env.receive(env.message(LI, "已交", "msgPayLi==", group=False))
    await env.bot.app.flush_outbox()
    before = env.fake.calls.copy()
    robot_before, group_before = len(env.fake.robot_messages), len(env.fake.group_messages)

    await env.run_event("dues", "remind")
    calls = sends_since(env.fake, before)
    missing = {m: n for m, n in BRANCH1.items() if m not in (ZHANG, LI)}
    if webhook:
        assert calls == {"robot": 1}
        [sent] = env.fake.robot_messages[robot_before:]
        assert sorted(sent["body"]["at"]["atUserIds"]) == sorted(uid(m) for m in missing)
        text = sent["body"]["text"]["content"]
        assert all(f"@{uid(m)}" in text for m in missing)
    else:
        assert calls == {"groupMessages": 1}
        [sent] = env.fake.group_messages[group_before:]
        assert sent["conversation_id"] == G1
        text = sent["param"]["content"]
    assert "以下同志尚未填报" in text
    assert all(name in text for name in missing.values())
    assert "张三" not in text and "李四" not in text
    assert {r.status for r in await env.outbox(platform="dingtalk")} == {"sent"}


@MODES
async def test_role_targeted_reminders_are_batched_20_per_call(make_env: MakeEnv, mode: str) -> None:
    env = await make_env(mode, schedules=only("party_group_meeting"))
    leaders = [f"leader{i:02d}" for i in range(25)]
    async with env.bot.app.sessions() as session, session.begin():
        branch = await find_org(session, "第一党支部")
        assert branch is not None
        session.add_all(Member(name=f"组长{i:02d}", mobile=f"139000000{i:02d}", org_id=branch.id, roles=",党员,党小组长,",
                               dingtalk_userid=leader, created_at=env.clock.now()) for i, leader in enumerate(leaders))
    await env.run_at(DEC1_0900)
    before, oto_before = env.fake.calls.copy(), len(env.fake.oto_messages)

    await env.run_event("party_group_meeting", "remind")
    expected = {uid(WANGWU), *leaders}  # 26 missing 党小组长, one identical text
    assert sends_since(env.fake, before) == {"batchSend": 2}  # ceil(26 / 20)
    batches = env.fake.oto_messages[oto_before:]
    assert sorted(len(b["user_ids"]) for b in batches) == [6, 20]
    assert {u for b in batches for u in b["user_ids"]} == expected
    assert len({b["param"]["content"] for b in batches}) == 1 and "12月党小组会记录" in batches[0]["param"]["content"]
    assert {r.status for r in await env.outbox(platform="dingtalk")} == {"sent"}


# --- 4. forged / stale / missing signatures, oversized and malformed bodies -----------------------------------

async def test_bad_signatures_are_401_before_the_body_and_the_bot_keeps_serving(make_env: MakeEnv) -> None:
    env = await make_env("http")
    await env.run_at(DEC1_0900)
    now_ms = env._now_ms()
    secret = env.fake.app_secret
    not_json, huge = b"{not json", b"x" * (1024 * 1024)
    forged, _ = signed_callback(b"", "not-the-app-secret", now_ms)
    stale, _ = signed_callback(b"", secret, now_ms - 3_700_000)  # older than callback_window_s (1 h)
    valid, _ = signed_callback(b"", secret, now_ms)
    no_sign = {k: v for k, v in valid.items() if k != "sign"}
    no_timestamp = {k: v for k, v in valid.items() if k != "timestamp"}
    for headers in (forged, stale, no_sign, no_timestamp, {"Content-Type": "application/json"}):
        # Had the body been read or parsed first, these would be 413 (too large) or 400 (not JSON).
        for raw in (not_json, huge):
            resp = await env.post_callback(raw, headers)
            assert resp.status == 401, (headers, len(raw))
    resp = await env.post_callback(huge, valid)
    assert resp.status == 413
    resp = await env.post_callback(not_json, valid)
    assert resp.status == 400
    resp = await env.post_callback(json.dumps({"msgtype": "text", "text": {"content": "党费 50"}}).encode(), valid)
    assert resp.status == 400  # JSON, but not a robot message (no msgId, no sender)
    assert await env.rows(select(InboundMessage)) == []

    await env.receive(env.message(ZHANG, "党费 50", "msgAfterAttack=="))  # still serving
    zhang = await env.member(ZHANG)
    assert len(await env.rows(select(Response).where(Response.member_id == zhang.id))) == 1


async def test_malformed_stream_frames_are_dropped_and_the_bot_keeps_serving(make_env: MakeEnv) -> None:
    env = await make_env("stream")
    await env.run_at(DEC1_0900)
    conn = env.fake.open_conns()[-1]
    bad = [
        await env.fake.push("CALLBACK", "/v1.0/im/bot/messages/get", {"msgtype": "text"}),  # no msgId/sender
        await env.fake.push("CALLBACK", "/v1.0/im/bot/messages/get", {}, message_id="empty-frame"),
    ]
    await conn.ws.send_str("{this is not a frame")
    frame = {"specVersion": "1.0", "type": "CALLBACK", "data": "[not an object",
             "headers": {"messageId": "bad-data", "topic": "/v1.0/im/bot/messages/get"}}
    await conn.ws.send_json(frame)
    for frame_id in [*bad, "bad-data"]:
        assert (await env.fake.wait_ack(frame_id))["code"] == 200  # ACKed, so DingTalk does not re-push
    await env.receive(env.message(ZHANG, "党费 50", "msgAfterJunk=="))
    assert [m.message_id for m in await env.rows(select(InboundMessage))] == ["msgAfterJunk=="]
    assert len(env.fake.open_conns()) == 1 and env.fake.calls["connections"] == 1  # same socket throughout


# --- 5. flow control and 5xx end sent; quota errors fail once and alert admins once --------------------------

@MODES
async def test_flow_control_and_5xx_end_sent_once_dingtalk_recovers(make_env: MakeEnv, mode: str) -> None:
    env = await make_env(mode)
    env.fake.inject("groupMessages", [("http", 403, QPS_LIMIT), ("http", 502, {"code": "ServiceUnavailable"})])
    # Four 1:1 texts go out at 09:00 (meeting-record openings); the secretary gets three of them.
    env.fake.inject("batchSend", [("http", 400, TOO_FAST), ("http", 500, {"code": "InternalError"})])
    env.fake.flow_controlled_user_ids = {uid(SECRETARY)}
    await env.run_at(DEC1_0900)

    rows = await env.outbox(platform="dingtalk")
    assert "pending" in {r.status for r in rows}
    errors = " ".join(r.last_error for r in rows)
    assert all(code in errors for code in ("QpsLimit", "send.too.fast", "InternalError", "flow controlled"))
    env.fake.flow_controlled_user_ids = set()
    await env.recover()

    rows = await env.outbox(platform="dingtalk")
    assert {r.status for r in rows} == {"sent"}
    assert max(r.attempts for r in rows) >= 2
    # Each message reached DingTalk exactly once: no duplicate for rows that were retried.
    delivered = [(u, m["param"]["content"]) for m in env.fake.oto_messages for u in m["user_ids"]]
    assert len(delivered) == len(set(delivered))
    expected = {(r.payload["user_id"], r.payload["text"]) for r in rows if r.payload["user_id"]}
    assert set(delivered) == expected
    assert [m["conversation_id"] for m in env.fake.group_messages] == [G1]
    assert await env.outbox(reason="alert") == []  # flow control is not an admin matter


@MODES
async def test_quota_errors_fail_without_retry_and_alert_admins_once(make_env: MakeEnv, mode: str) -> None:
    env = await make_env(mode)
    env.fake.inject("groupMessages", [("http", 403, ORG_QUOTA)])
    env.fake.inject("batchSend", [("http", 200, {"errcode": 90020, "errmsg": "超过调用量限制"})] * 5)
    await env.run_at(DEC1_0900)

    rows = await env.outbox(platform="dingtalk")
    assert rows and {(r.status, r.attempts) for r in rows} == {("failed", 1)}
    assert any("quota" in r.last_error for r in rows)
    calls = env.fake.calls.copy()
    await env.recover()
    env.clock.advance(dt.timedelta(hours=2))  # past the hourly re-probe: DingTalk still says no
    env.fake.inject("groupMessages", [("http", 403, ORG_QUOTA)])
    await env.run_event("theme_day", "announce")
    assert env.fake.calls["groupMessages"] - calls["groupMessages"] <= 1
    assert {(r.status, r.attempts) for r in await env.outbox(platform="dingtalk")} == {("failed", 1)}

    # 郑华 (the demo admin) is told exactly once — on another platform, since DingTalk cannot send now.
    [alert] = await env.outbox(reason="alert")
    assert (alert.platform, alert.payload["user_id"], alert.status) == ("local", ADMIN, "sent")
    assert "已用完" in alert.payload["text"]


# --- 6. admins see the monthly DingTalk usage in /stats -----------------------------------------------------

@MODES
async def test_stats_shows_dingtalk_monthly_usage_to_admins(make_env: MakeEnv, mode: str) -> None:
    env = await make_env(mode)
    await env.run_at(DEC1_0900)
    before = await env.adapter.quota_usage()
    assert before["api_used"] == env.fake.calls["groupMessages"] + env.fake.calls["batchSend"] > 0

    admin_ask = env.message(ADMIN, "/stats", "msgStatsAdmin==", group=False)
    await env.receive(admin_ask)
    secretary_ask = env.message(SECRETARY, "/stats", "msgStatsSecretary==", group=False)
    await env.receive(secretary_ask)
    await env.bot.app.flush_outbox()

    def reply_to(ask: dict[str, Any]) -> str:
        [body] = env.said_in_chat(ask)
        return str(body["text"]["content"])

    # The admin's own /stats push is already counted when the reply is composed.
    line = f"钉钉本月用量：API {before['api_used']}/5000，推送 {before['push_used'] + 1}/3000"
    assert line in reply_to(admin_ask).splitlines()
    assert "钉钉本月用量" not in reply_to(secretary_ask)
    assert "【12月党费收缴】统计" in reply_to(secretary_ask)


# --- 7. budget ≥ 80 %: one group digest instead of 1:1 nudges ---------------------------------------------

@MODES
async def test_low_budget_turns_targeted_reminders_into_one_group_digest(make_env: MakeEnv, mode: str) -> None:
    env = await make_env(mode, schedules=only("party_group_meeting"), monthly_api_quota=100)
    await env.run_at(DEC1_0900)

    before = env.fake.calls.copy()
    await env.run_event("party_group_meeting", "remind")  # -5 workdays, budget fine: 1:1 to 王五
    assert sends_since(env.fake, before) == {"batchSend": 1}
    assert env.fake.oto_messages[-1]["user_ids"] == [uid(WANGWU)]
    assert not await env.adapter.budget_low()

    usage = await env.adapter.quota_usage()
    await env.adapter.client.quota.record("api", 80 - int(str(usage["api_used"])))  # other apps used the rest
    assert await env.adapter.budget_low()
    before, oto_before = env.fake.calls.copy(), len(env.fake.oto_messages)
    await env.run_event("party_group_meeting", "remind")  # -1 workday, budget low: one group digest
    digest = [m["body"] for m in env.fake.robot_messages if "12月党小组会记录" in m["body"]["text"]["content"]]
    assert len(digest) == 1
    assert digest[0]["at"]["atUserIds"] == [uid(WANGWU)] and "王五" in digest[0]["text"]["content"]
    assert not [m for m in env.fake.oto_messages[oto_before:] if uid(WANGWU) in m["user_ids"]]
    # What still goes 1:1 is the escalation to the secretary (not a nudge).
    assert {u for m in env.fake.oto_messages[oto_before:] for u in m["user_ids"]} <= {uid(SECRETARY)}
    assert sends_since(env.fake, before)["robot"] == 1
    # The 80 % warning reached the admin once, off DingTalk.
    [warning] = await env.outbox(reason="alert")
    assert warning.platform == "local" and "80%" in warning.payload["text"]


# --- inline replies: the first reply to the chat rides in the callback's response ---------------------------

async def test_a_direct_answer_is_confirmed_in_the_callback_response_with_no_call(make_env: MakeEnv) -> None:
    env = await make_env("http")
    await env.run_at(DEC1_0900)
    before = env.fake.calls.copy()
    body = env.message(LI, "党费 15", "msgInlineLi==", group=False)
    await env.receive(body)
    await env.bot.app.flush_outbox()
    # DingTalk got the confirmation (amount included: a 1:1 chat) as the response and posts it itself.
    answer = env.inline[body["msgId"]]
    assert answer["msgtype"] == "text" and "已登记" in answer["text"]["content"]
    assert "15.00元" in answer["text"]["content"]
    assert sends_since(env.fake, before) == {}  # not one API call or webhook POST for it
    await wait_for(lambda: env.bot.app.metrics.value("dangjian_replies_inline_total", result="sent") == 1)
    [row] = [r for r in await env.outbox(reason="reply") if "15.00元" in r.payload["text"]]
    assert row.status == "sent" and row.attempts == 1
    # A redelivery of the same push is answered empty: the member is not told twice.
    await env.redeliver(body)
    assert sends_since(env.fake, before) == {}


async def test_inline_replies_off_uses_the_session_webhook(make_env: MakeEnv) -> None:
    env = await make_env("http", inline_replies=False)
    await env.run_at(DEC1_0900)
    body = env.message(LI, "党费 15", "msgNoInline==", group=False)
    await env.receive(body)
    await env.bot.app.flush_outbox()
    assert body["msgId"] not in env.inline
    [posted] = env.said_in_chat(body)
    assert "15.00元" in posted["text"]["content"]


async def test_a_held_reply_goes_out_through_the_outbox_if_never_or_not_carried(make_env: MakeEnv) -> None:
    """A reply held for the acknowledgement is sent the usual way when the platform cannot carry it
    (``settle(False)``: at once) or never answers for it (the bot stopped first: after the hold)."""
    from bot.db.outbox import INLINE_HOLD
    from bot.platforms.dingtalk.parse import parse_robot_message

    env = await make_env("http")
    await env.run_at(DEC1_0900)
    app = env.bot.app

    def held(mobile: str, msg_id: str) -> Any:
        msg = parse_robot_message(env.message(mobile, "党费 15", msg_id, group=False), env.clock.now())
        return dataclasses.replace(msg, inline_reply=True)

    forgotten = await app.inbound(held(LI, "msgHeldForgotten=="))  # as if the bot died before answering
    released = await app.inbound(held(ZHANG, "msgHeldReleased=="))
    assert forgotten.inline is not None and released.inline is not None
    assert [r.status for r in await env.outbox(reason="reply")] == ["inline", "inline"]
    released.inline.settle(False)
    await wait_for(lambda: app.metrics.value("dangjian_replies_inline_total", result="released") == 1)
    await app.flush_outbox()
    assert [r.status for r in await env.outbox(reason="reply")] == ["inline", "sent"]
    assert len(env.fake.session_messages) == 1  # 张三's reply, through his message's session webhook

    env.clock.advance(INLINE_HOLD + dt.timedelta(seconds=1))
    await app.flush_outbox()
    assert [r.status for r in await env.outbox(reason="reply")] == ["sent", "sent"]
    assert len(env.fake.session_messages) == 2
    assert "15.00元" in env.fake.session_messages[1]["body"]["text"]["content"]


async def test_a_reply_that_outlasts_the_callbacks_wait_goes_out_through_the_outbox(make_env: MakeEnv) -> None:
    """Handling slower than the callback's wait (``ACK_WAIT_S``, 3 s of real time here: the member's
    conversation lock is held meanwhile): the callback answers empty, and the held reply, once there, is
    released to the dispatcher and sent through the session webhook."""
    from bot.platforms.dingtalk.callbacks import ACK_WAIT_S
    from bot.platforms.dingtalk.parse import parse_robot_message

    env = await make_env("http")
    await env.run_at(DEC1_0900)
    app = env.bot.app
    body = env.message(LI, "党费 15", "msgSlow==", group=False)
    msg = parse_robot_message(body, env.clock.now())
    async with app.kv.lock(f"conv:{msg.platform.value}:{msg.conversation_id}:{msg.sender_id}", 30):
        headers, raw = signed_callback(body, env.fake.app_secret, int(env.clock.now().timestamp() * 1000))
        started = asyncio.get_running_loop().time()
        resp = await env.post_callback(raw, headers)
        assert resp.status == 200 and await resp.json() == {"msgtype": "empty"}
        assert asyncio.get_running_loop().time() - started >= ACK_WAIT_S
    await wait_for(lambda: app.metrics.value("dangjian_replies_inline_total", result="released") == 1)
    await app.flush_outbox()
    [posted] = env.said_in_chat(body)
    assert "15.00元" in posted["text"]["content"]
    assert [r.status for r in await env.outbox(reason="reply")] == ["sent"]
