"""Fault tests: storage outages, flaky platforms, a crash mid-broadcast, two instances.

Outages use PRIVATE servers started here (a redis-server child, a throw-away PostgreSQL cluster) and
stopped or killed inside the test; the shared servers are never touched. Everything is bounded in time.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, insert, select, update

from bench.services import PrivatePostgres, PrivateRedis, free_port
from bot.clock import FakeClock
from bot.config import Settings
from bot.db.outbox import enqueue
from bot.db.tables import InboundMessage, Member, OutboxMessage, Response
from bot.message import OutgoingMessage, Platform, Recipient
from bot.platforms.base import Delivery
from tests.conftest import Running, start_bot, stop_bot
from tests.fakes.dingtalk_server import FakeDingTalk, signed_callback
from tests.fakes.wecom_server import FakeUser, FakeWeCom, Fault

ROOT = Path(__file__).resolve().parent.parent
ZHANG_SAN, LI_SI, WANG_WU, ZHAO_LIU = "13800000003", "13800000004", "13800000005", "13800000006"
DT_IDS = {ZHANG_SAN: "dt-zhangsan", LI_SI: "dt-lisi", WANG_WU: "dt-wangwu", ZHAO_LIU: "dt-zhaoliu"}
CALLBACK = "/dingtalk/callback"


# --- helpers ----------------------------------------------------------------------------------------


def dingtalk_section(fake: FakeDingTalk, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True, "mode": "http", "app_key": fake.app_key, "app_secret": fake.app_secret,
        "api_base": fake.base_url, "oapi_base": fake.base_url, "public_url": "http://127.0.0.1", "qps": 1000,
    } | extra


def dm_body(msg_id: str, staff_id: str, text: str) -> dict[str, Any]:
    """A DingTalk 1:1 robot message (no session webhook: replies go through the robot API)."""
    return {
        "msgtype": "text", "text": {"content": text}, "msgId": msg_id, "conversationType": "1",
        "conversationId": f"cid-{staff_id}", "senderStaffId": staff_id, "senderNick": staff_id,
        "robotCode": "dingfakeapp", "isInAtList": True,
    }


async def link_dingtalk(app: Any, ids: dict[str, str]) -> None:
    async with app.sessions() as session, session.begin():
        for mobile, staff_id in ids.items():
            await session.execute(update(Member).where(Member.mobile == mobile).values(dingtalk_userid=staff_id))


# msgId -> the reply carried in the callback's response (DingTalk posts it to the chat: inline_replies)
INLINE_ANSWERS: dict[str, dict[str, Any]] = {}


async def post_callback(client: Any, body: dict[str, Any], clock: FakeClock, secret: str) -> int:
    headers, raw = signed_callback(body, secret, int(clock.now().timestamp() * 1000))
    resp = await client.post(CALLBACK, data=raw, headers=headers)
    if resp.status == 200 and (answer := await resp.json()) != {"msgtype": "empty"}:
        INLINE_ANSWERS[str(body["msgId"])] = answer
    await resp.read()
    return int(resp.status)


async def settle(app: Any, timeout: float = 10.0) -> None:
    """Wait until the DingTalk adapter's background hand-offs are done."""
    tasks = app.adapters[Platform.DINGTALK]._tasks
    deadline = time.monotonic() + timeout
    while len(tasks) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert not len(tasks), "dingtalk hand-offs did not finish"
    await app.inline_replies.drain()  # replies carried in callback responses: marked sent


async def scalar(app: Any, stmt: Any) -> Any:
    async with app.sessions() as session:
        return (await session.execute(stmt)).scalar_one()


async def inbound_rows(app: Any, message_id: str) -> int:
    stmt = select(func.count()).select_from(InboundMessage).where(InboundMessage.message_id == message_id)
    return int(await scalar(app, stmt))


async def responses_of(app: Any, mobile: str) -> list[Response]:
    async with app.sessions() as session:
        stmt = select(Response).join(Member, Member.id == Response.member_id).where(Member.mobile == mobile)
        return list((await session.execute(stmt)).scalars().all())


async def health(running: Running) -> tuple[int, dict[str, Any]]:
    resp = await running.client.get("/healthz")
    return resp.status, await resp.json()


async def local_post(running: Running, sender: str, text: str, message_id: str | None = None) -> tuple[int, Any]:
    body: dict[str, Any] = {"conversation_id": f"dm:{sender}", "sender_id": sender, "text": text}
    if message_id:
        body["message_id"] = message_id
    resp = await running.client.post("/api/local/messages", json=body)
    return resp.status, await resp.json()


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def fake_dt(clock: FakeClock) -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(clock=clock) as fake:
        yield fake


# --- Redis stopped while the bot runs ---------------------------------------------------------------


@pytest.mark.redis
async def test_redis_outage_degrades_and_recovers(settings_factory: Any, clock: FakeClock, fake_dt: FakeDingTalk) -> None:
    if reason := PrivateRedis.available():
        pytest.skip(reason)
    redis = PrivateRedis().start()
    running: Running | None = None
    try:
        settings = await settings_factory(**{"redis.url": redis.url, "dingtalk": dingtalk_section(fake_dt)})
        running = await start_bot(settings, clock)
        app = running.app
        await link_dingtalk(app, DT_IDS)
        status, body = await health(running)
        assert (status, body["status"], body["kv"]) == (200, "ok", {"ok": True, "backend": "redis"})

        redis.kill()  # SIGKILL: Redis is gone, connections reset

        status, body = await health(running)
        assert status == 200 and body["status"] == "degraded" and body["kv"]["ok"] is False
        assert body["database"]["ok"] is True

        # Members keep getting answers (local chat answers synchronously).
        code, data = await local_post(running, LI_SI, "党费 50")
        assert code == 200 and any("已登记" in r["text"] for r in data["replies"]), data
        # The same local message id twice: stored once.
        for expect_duplicate in (False, True):
            code, data = await local_post(running, ZHANG_SAN, "党费 50", message_id="outage-local-1")
            assert code == 200 and data["duplicate"] is expect_duplicate, data
        assert len(await responses_of(app, ZHANG_SAN)) == 1

        # DingTalk: the same msgId twice in a row, then twice at once: the DB unique id dedups.
        for _ in range(2):
            assert await post_callback(running.client, dm_body("outage-dt-1", "dt-wangwu", "党费 60"),
                                       clock, fake_dt.app_secret) == 200
        body2 = dm_body("outage-dt-2", "dt-zhaoliu", "党费 40")
        codes = await asyncio.gather(*(post_callback(running.client, body2, clock, fake_dt.app_secret)
                                       for _ in range(2)))
        assert codes == [200, 200]
        await settle(app)
        for msg_id, mobile in (("outage-dt-1", WANG_WU), ("outage-dt-2", ZHAO_LIU)):
            assert await inbound_rows(app, msg_id) == 1
            [answer] = await responses_of(app, mobile)
            assert answer.revision == 1  # handled once: a second handling would have made revision 2

        # Each DingTalk answer was confirmed once, in the response to its first delivery (no call needed).
        for msg_id, amount in (("outage-dt-1", "60.00元"), ("outage-dt-2", "40.00元")):
            assert "已登记" in INLINE_ANSWERS[msg_id]["text"]["content"]
            assert amount in INLINE_ANSWERS[msg_id]["text"]["content"]

        # Redis returns on the same port: healthy again, and nothing is left to send.
        redis.start()
        await wait_until(lambda: _kv_ok(running), 10, "kv ok")
        status, body = await health(running)
        assert status == 200 and body["status"] == "ok"
        clock.advance(dt.timedelta(hours=1))  # past any retry backoff from the outage
        await running.app.flush_outbox()
        assert not [m for m in fake_dt.oto_messages if {"dt-wangwu", "dt-zhaoliu"} & set(m["user_ids"])]
        pending = await scalar(app, select(func.count()).select_from(OutboxMessage)
                               .where(OutboxMessage.status != "sent"))
        assert pending == 0
    finally:
        if running is not None:
            await stop_bot(running)
        redis.kill()


async def _kv_ok(running: Running) -> bool:
    return bool((await health(running))[1]["kv"]["ok"])


# --- PostgreSQL restarted while the bot runs --------------------------------------------------------


@pytest.fixture
def private_pg() -> Any:
    if reason := PrivatePostgres.available():
        pytest.skip(reason)
    pg = PrivatePostgres().init().start()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.mark.postgres
async def test_postgres_restart_answers_5xx_then_stores_the_redelivery_once(
    settings_factory: Any, clock: FakeClock, fake_dt: FakeDingTalk, private_pg: PrivatePostgres
) -> None:
    settings = await settings_factory(**{"database.url": private_pg.url, "dingtalk": dingtalk_section(fake_dt)})
    running = await start_bot(settings, clock)
    try:
        app = running.app
        await link_dingtalk(app, DT_IDS)
        assert await post_callback(running.client, dm_body("pg-0", "dt-lisi", "党费 50"), clock,
                                   fake_dt.app_secret) == 200
        await settle(app)
        assert await inbound_rows(app, "pg-0") == 1

        private_pg.stop("immediate")  # like a crash: no shutdown checkpoint

        body = dm_body("pg-1", "dt-zhangsan", "党费 50")
        for _ in range(2):  # DingTalk redelivers while we answer 5xx
            assert await post_callback(running.client, body, clock, fake_dt.app_secret) == 503
        code, data = await local_post(running, WANG_WU, "党费 60", message_id="pg-local-1")
        assert code == 503 and "error" in data, data
        status, hbody = await health(running)
        assert status == 503 and hbody["database"]["ok"] is False

        private_pg.start()
        await wait_until(lambda: _db_ok(running), 15, "database ok")

        # Nothing was half-written during the outage.
        assert await inbound_rows(app, "pg-1") == 0
        assert await responses_of(app, ZHANG_SAN) == []
        # The redelivery is stored once, however often it comes.
        for _ in range(3):
            assert await post_callback(running.client, body, clock, fake_dt.app_secret) == 200
        await settle(app)
        assert await inbound_rows(app, "pg-1") == 1
        [answer] = await responses_of(app, ZHANG_SAN)
        assert answer.revision == 1
        # The local chat's retry of the same message id is stored once too.
        for expect_duplicate in (False, True):
            code, data = await local_post(running, WANG_WU, "党费 60", message_id="pg-local-1")
            assert code == 200 and data["duplicate"] is expect_duplicate, data
        assert len(await responses_of(app, WANG_WU)) == 1
        replies = await scalar(app, select(func.count()).select_from(OutboxMessage)
                               .where(OutboxMessage.reason == "reply", OutboxMessage.platform == "dingtalk"))
        assert replies == 2  # pg-0 and pg-1: one reply each
    finally:
        await stop_bot(running)


async def _db_ok(running: Running) -> bool:
    return bool((await health(running))[1]["database"]["ok"])


# --- flaky platforms: 5xx, timeouts and flow control for 20 % of calls -------------------------------

FLAKY_RATE = 0.2
# A healthy answer must never miss the client timeout, even on a busy 2-core CI machine (a late answer
# would be retried and delivered twice); a stall must always miss it.
CLIENT_TIMEOUT_S = 1.0
STALL_S = 1.5


class FlakyDingTalk(FakeDingTalk):
    """Answers 20 % of send calls (seeded) with a 5xx, a stall past the client timeout, or flow control."""

    FLAKY = frozenset({"batchSend", "groupMessages", "accessToken"})

    def __init__(self, *, seed: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.rng = random.Random(seed)
        self.faults_served: collections.Counter[str] = collections.Counter()
        self.down = False  # True: every send call fails (an outage), until recovery

    def _wrap(self, name: str, handler: Any) -> Any:
        inner = super()._wrap(name, handler)

        async def wrapped(request: web.Request) -> web.StreamResponse:
            if name in self.FLAKY and (self.down or self.rng.random() < FLAKY_RATE):
                self.calls[name] += 1
                kind = self.rng.choice(["5xx", "timeout", "flow"])
                self.faults_served[kind] += 1
                if kind == "5xx":
                    return web.json_response({"code": "ServiceUnavailable", "message": "busy"}, status=503)
                if kind == "timeout":
                    await asyncio.sleep(STALL_S)
                    return web.json_response({"code": "gateway.timeout"}, status=504)
                return web.json_response({"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                                          "message": "qps"}, status=403)
            result: web.StreamResponse = await inner(request)
            return result

        return wrapped


class FlakyWeCom(FakeWeCom):
    """20 % of message/send calls: HTTP 502, a stall past the client timeout (then processed: the
    answer is lost, as on a real network), 45009 frequency ban, or -1 system busy."""

    def __init__(self, *, seed: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.rng = random.Random(seed)
        self.faults_served: collections.Counter[str] = collections.Counter()

    def _wrap(self, name: str, handler: Any) -> Any:
        inner = super()._wrap(name, handler)

        async def wrapped(request: web.Request) -> web.StreamResponse:
            if name == "message/send" and self.rng.random() < FLAKY_RATE:
                kind = self.rng.choice(["5xx", "timeout", "flow", "busy"])
                self.faults_served[kind] += 1
                fault = {"5xx": Fault(status=502), "timeout": Fault(delay=STALL_S), "flow": Fault(errcode=45009),
                         "busy": Fault(errcode=-1)}[kind]
                self._faults[name].appendleft(fault)
            result: web.StreamResponse = await inner(request)
            return result

        return wrapped


class AttemptLog:
    """Wraps a messenger: when (fake clock) each message was handed to the platform."""

    def __init__(self, inner: Any, clock: FakeClock) -> None:
        self.inner, self.clock, self.platform = inner, clock, inner.platform
        self.times: dict[tuple[str, str], list[dt.datetime]] = collections.defaultdict(list)

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        for m in messages:
            self.times[(m.recipient.user_id or m.recipient.conversation_id, m.text)].append(self.clock.now())
        result: list[Delivery] = await self.inner.deliver(messages)
        return result


async def drive_outbox(app: Any, clock: FakeClock, max_rounds: int = 400) -> int:
    """Run the dispatcher to completion, moving the fake clock to the next due retry when idle."""
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        if await app.dispatcher.drain_once():
            continue
        async with app.sessions() as session:
            next_due = (await session.execute(
                select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.status == "pending")
            )).scalar_one()
        if next_due is None:
            return rounds
        clock.set(max(clock.now(), next_due + dt.timedelta(milliseconds=1)))
    raise AssertionError("outbox did not drain: a retry loop?")


@pytest.mark.slow
async def test_flaky_platforms_deliver_everything_once_with_bounded_backoff(
    settings_factory: Any, clock: FakeClock
) -> None:
    users = [FakeUser(f"member{i:02d}", f"党员{i:02d}", (2,)) for i in range(1, 41)]
    async with FlakyDingTalk(seed=20261127, clock=clock) as fdt, FlakyWeCom(seed=7, users=users) as fwc:
        wecom = {"enabled": True, "corp_id": fwc.corp_id, "agent_id": str(fwc.agent_id), "secret": fwc.secret,
                 "api_base": fwc.base_url, "http_timeout_seconds": CLIENT_TIMEOUT_S}
        # A generous give-up limit: with 20 % faults a long unlucky streak must not fail the test.
        settings = await settings_factory(dingtalk=dingtalk_section(fdt), wecom=wecom, **{"outbox.max_attempts": 12})
        running = await start_bot(settings, clock)
        try:
            app = running.app
            app.adapters[Platform.DINGTALK].client._timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
            # WeCom's client retries a failed call in-process after a backoff sleep: record the asked
            # delays (they must be backoffs, not a spin) and skip the wall-clock wait.
            wecom_sleeps: list[float] = []

            async def no_wait(delay: float) -> None:
                wecom_sleeps.append(delay)

            app.adapters[Platform.WECOM].client._sleep = no_wait
            logs = {p: AttemptLog(app.dispatcher.messengers[p], clock) for p in (Platform.DINGTALK, Platform.WECOM)}
            app.dispatcher.messengers.update(logs)
            expected_dt: list[tuple[str, str]] = []
            expected_wc: list[tuple[str, str]] = []
            async with app.sessions() as session, session.begin():
                now = clock.now()

                def put(platform: Platform, text: str, *, user: str = "", conv: str = "") -> None:
                    enqueue(session, OutgoingMessage(Recipient(platform, conversation_id=conv, user_id=user), text),
                            now, reason="broadcast")

                for i in range(150):  # distinct texts: one batchSend each
                    put(Platform.DINGTALK, f"个人提醒 {i}", user=f"dt-user-{i}")
                    expected_dt.append((f"dt-user-{i}", f"个人提醒 {i}"))
                for i in range(60):  # one text to 60 people: batches of 20
                    put(Platform.DINGTALK, "全体党员：本月党费请于25日前缴纳", user=f"dt-all-{i}")
                    expected_dt.append((f"dt-all-{i}", "全体党员：本月党费请于25日前缴纳"))
                for i in range(20):
                    put(Platform.DINGTALK, f"群通知 {i}", conv=f"cid-group-{i}")
                    expected_dt.append((f"cid-group-{i}", f"群通知 {i}"))
                for i in range(120):
                    user = f"member{i % 40 + 1:02d}"
                    put(Platform.WECOM, f"企业微信提醒 {i}", user=user)
                    expected_wc.append((user, f"企业微信提醒 {i}"))
            await drive_outbox(app, clock)

            async with app.sessions() as session:
                rows = (await session.execute(select(OutboxMessage.status, OutboxMessage.attempts)
                                              .where(OutboxMessage.reason == "broadcast"))).all()
            assert {s for s, *_ in rows} == {"sent"}, collections.Counter(s for s, *_ in rows)
            attempts = [a for _, a, *_ in rows]
            # Everything delivered exactly once at the platform (WeCom's duplicate check absorbs the
            # retry of a send whose answer was lost).
            got_dt: collections.Counter[tuple[str, str]] = collections.Counter()
            for m in fdt.oto_messages:
                for u in m["user_ids"]:
                    got_dt[(u, m["param"]["content"])] += 1
            for m in fdt.group_messages:
                got_dt[(m["conversation_id"], m["param"]["content"])] += 1
            assert sorted(got_dt) == sorted(expected_dt) and set(got_dt.values()) == {1}
            got_wc = collections.Counter((d.to, d.content) for d in fwc.delivered)
            assert sorted(got_wc) == sorted(expected_wc) and set(got_wc.values()) == {1}
            assert sum(fdt.faults_served.values()) > 20 and sum(fwc.faults_served.values()) > 5

            # No tight retry loop: a message is retried only after the backoff (base 2 s, ±20 % jitter),
            # and never needed more than a handful of attempts.
            base = settings.outbox.base_backoff_seconds * 0.8
            for log in logs.values():
                for times in log.times.values():
                    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
                    assert all(g >= base for g in gaps), gaps
            assert max(attempts) <= 10
            assert wecom_sleeps and min(wecom_sleeps) >= 0.2, wecom_sleeps
            assert sum(attempts) / len(attempts) < 1.6
            calls = fdt.calls["batchSend"] + fdt.calls["groupMessages"]
            print(f"\nflaky platforms: {len(rows)} messages, attempts mean {sum(attempts) / len(attempts):.2f} "
                  f"max {max(attempts)}; dingtalk faults {dict(fdt.faults_served)} calls {calls}; "
                  f"wecom faults {dict(fwc.faults_served)} calls {fwc.calls['message/send']}")
        finally:
            await stop_bot(running)


# --- SIGKILL in the middle of a 5,000-message broadcast ----------------------------------------------

BROADCAST = 5000
BROADCAST_TEXT = "【通知】请全体党员于本周五前完成党费缴纳。"


class SlowDingTalk(FakeDingTalk):
    """batchSend takes a little while, so that a kill lands in the middle of the broadcast."""

    def _wrap(self, name: str, handler: Any) -> Any:
        inner = super()._wrap(name, handler)

        async def wrapped(request: web.Request) -> web.StreamResponse:
            if name == "batchSend":
                await asyncio.sleep(0.03)
            result: web.StreamResponse = await inner(request)
            return result

        return wrapped

    def delivered_users(self) -> list[str]:
        return [u for m in self.oto_messages for u in m["user_ids"]]


def toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON strings/numbers/bools are valid TOML here


def write_config(path: Path, sections: dict[str, dict[str, Any]], top: dict[str, Any]) -> Path:
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bot_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGJIAN_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class BotProcess:
    """``python -m bot run --config …`` as a child process (the real entry point)."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(self.config)],
                                         cwd=ROOT, env=bot_env(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "bot process did not become healthy"
                await asyncio.sleep(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None


async def outbox_by_status(app_sessions: Any) -> dict[str, int]:
    async with app_sessions() as session:
        rows = await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
        return {s: int(n) for s, n in rows.all()}


@pytest.mark.slow
async def test_sigkill_mid_broadcast_loses_nothing(settings_factory: Any, tmp_path: Path) -> None:
    from bot.db.engine import create_engine, session_factory
    from bot.migrations import upgrade

    settings: Settings = await settings_factory()
    async with SlowDingTalk() as fake:  # real clock: the bot process runs on the system clock
        port = free_port()
        config = write_config(tmp_path / "bot.toml", {
            "server": {"host": "127.0.0.1", "port": port},
            "database": {"url": settings.database_url},
            "redis": {"url": settings.redis.url},
            "scheduler": {"enabled": False},
            "demo": {"seed": False, "announce_current": False},
            "outbox": {"lease_seconds": 2.0, "batch_size": 200, "poll_seconds": 0.2},
            "dingtalk": dingtalk_section(fake),
        }, {"data_dir": str(tmp_path / "data"), "log_level": "WARNING"})
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        bot = BotProcess(config, port, tmp_path / "bot.log")
        try:
            await upgrade(engine)
            now = dt.datetime.now(dt.UTC)
            payload = OutgoingMessage(Recipient(Platform.DINGTALK, user_id="x"), BROADCAST_TEXT).to_json()
            rows = [{"platform": "dingtalk", "payload": payload | {"user_id": f"dt-b-{i:04d}"}, "status": "pending",
                     "attempts": 0, "next_attempt_at": now, "reason": "broadcast", "created_at": now,
                     "last_error": ""} for i in range(BROADCAST)]
            async with sessions() as session, session.begin():
                await session.execute(insert(OutboxMessage), rows)

            await bot.start()
            deadline = time.monotonic() + 60
            while len(fake.delivered_users()) < BROADCAST // 4:
                assert time.monotonic() < deadline, "the broadcast did not start"
                await asyncio.sleep(0.005)
            bot.kill(signal.SIGKILL)
            delivered_at_kill = len(fake.delivered_users())
            await asyncio.sleep(0.1)  # requests already on the wire reach the fake
            at_kill = await outbox_by_status(sessions)
            async with sessions() as session:
                in_flight = {r["user_id"] for (r,) in (await session.execute(
                    select(OutboxMessage.payload).where(OutboxMessage.status == "sending"))).all()}
            assert 0 < at_kill.get("sent", 0) < BROADCAST, at_kill  # killed mid-delivery

            await bot.start()  # the restarted bot re-leases the in-flight rows after their lease expires
            deadline = time.monotonic() + 90
            while len(set(fake.delivered_users())) < BROADCAST:
                assert time.monotonic() < deadline, f"only {len(set(fake.delivered_users()))} delivered"
                await asyncio.sleep(0.05)
            await wait_until(lambda: _all_sent(sessions), 30, "outbox all sent")
            bot.kill(signal.SIGTERM)

            users = collections.Counter(fake.delivered_users())
            duplicates = {u: n - 1 for u, n in users.items() if n > 1}
            assert set(users) == {f"dt-b-{i:04d}" for i in range(BROADCAST)}  # none lost
            # Duplicates only from the rows that were in flight (leased) at the kill, at most once each.
            assert set(duplicates) <= in_flight and set(duplicates.values()) <= {1}
            print(f"\nSIGKILL mid-broadcast: {delivered_at_kill} of {BROADCAST} delivered at the kill; outbox then "
                  f"{at_kill}; in flight {len(in_flight)}; after restart all {BROADCAST} delivered, "
                  f"duplicates {sum(duplicates.values())} (all from in-flight rows)")
        finally:
            bot.kill()
            await engine.dispose()


async def _all_sent(sessions: Any) -> bool:
    counts = await outbox_by_status(sessions)
    return counts.get("sent", 0) == BROADCAST and len(counts) == 1


# --- two instances behind one database + KV under load ----------------------------------------------

TWO_INSTANCE_MEMBERS = 60


async def add_dingtalk_members(app: Any, count: int, prefix: str) -> None:
    from bot.db.tables import Org

    async with app.sessions() as session, session.begin():
        org_id = (await session.execute(select(Org.id).where(Org.name == "第一党支部"))).scalar_one()
        now = app.clock.now()
        await session.execute(insert(Member), [
            {"name": f"党员{i:03d}", "org_id": org_id, "roles": ",党员,", "category": "在职", "active": True,
             "dingtalk_userid": f"{prefix}{i:03d}", "leave_reason": "", "created_at": now}
            for i in range(count)
        ])


async def deliver_like_dingtalk(client: Any, body: dict[str, Any], clock: FakeClock, secret: str) -> int:
    """POST a callback; on a 5xx DingTalk redelivers (bounded)."""
    for _ in range(5):
        status = await post_callback(client, body, clock, secret)
        if status < 500:
            return status
        await asyncio.sleep(0.2)
    return status


@pytest.mark.slow
async def test_two_instances_handle_each_message_once(
    settings_factory: Any, clock: FakeClock, fake_dt: FakeDingTalk, shared_backends: dict[str, str]
) -> None:
    settings = await settings_factory(dingtalk=dingtalk_section(fake_dt), **shared_backends)
    a = await start_bot(settings, clock)
    b = await start_bot(settings, clock)  # same database (and, on the Redis backend, the same KV)
    try:
        await add_dingtalk_members(a.app, TWO_INSTANCE_MEMBERS, "dt-load-")
        limit = asyncio.Semaphore(64)

        async def send(target: Running, i: int) -> int:
            async with limit:
                body = dm_body(f"two-{i:03d}", f"dt-load-{i:03d}", "党费 50")
                return await deliver_like_dingtalk(target.client, body, clock, fake_dt.app_secret)

        # Every message reaches BOTH instances at once (a redelivery racing the original).
        started = time.monotonic()
        jobs = [send(target, i) for i in range(TWO_INSTANCE_MEMBERS) for target in (a, b)]
        codes = await asyncio.gather(*jobs)
        await settle(a.app, 30)
        await settle(b.app, 30)
        elapsed = time.monotonic() - started
        assert set(codes) == {200}, collections.Counter(codes)

        app = a.app
        stored = await scalar(app, select(func.count()).select_from(InboundMessage)
                              .where(InboundMessage.message_id.like("two-%")))
        assert stored == TWO_INSTANCE_MEMBERS
        async with app.sessions() as session:
            revisions = (await session.execute(
                select(Response.revision).join(Member, Member.id == Response.member_id)
                .where(Member.dingtalk_userid.like("dt-load-%")))).scalars().all()
        assert len(revisions) == TWO_INSTANCE_MEMBERS and set(revisions) == {1}
        replies = await scalar(app, select(func.count()).select_from(OutboxMessage)
                               .where(OutboxMessage.platform == "dingtalk", OutboxMessage.reason == "reply"))
        assert replies == TWO_INSTANCE_MEMBERS  # one answer per message, not two
        dups = a.app.metrics.value("dangjian_messages_duplicate_total", platform="dingtalk") + \
            b.app.metrics.value("dangjian_messages_duplicate_total", platform="dingtalk")
        print(f"\ntwo instances: {2 * TWO_INSTANCE_MEMBERS} deliveries of {TWO_INSTANCE_MEMBERS} messages in "
              f"{elapsed:.1f} s; stored once each; {dups:.0f} dropped by the KV claim, the rest by the DB unique id")
    finally:
        await stop_bot(b)
        await stop_bot(a)


@pytest.mark.postgres
async def test_wecom_message_during_postgres_outage_is_not_lost(
    settings_factory: Any, clock: FakeClock, private_pg: PrivatePostgres
) -> None:
    from tests.fakes.wecom_server import CallbackDriver

    token, aes = "faultToken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    async with FakeWeCom() as fwc:
        wecom = {"enabled": True, "corp_id": fwc.corp_id, "agent_id": str(fwc.agent_id), "secret": fwc.secret,
                 "token": token, "encoding_aes_key": aes, "api_base": fwc.base_url}
        settings = await settings_factory(**{"database.url": private_pg.url, "wecom": wecom})
        running = await start_bot(settings, clock)
        try:
            app = running.app
            async with app.sessions() as session, session.begin():
                await session.execute(update(Member).where(Member.mobile == ZHANG_SAN).values(wecom_userid="zhangsan"))
            async with aiohttp.ClientSession() as http:
                base = str(running.client.make_url("")).rstrip("/")
                driver = CallbackDriver.for_app(http, base, token, aes, fwc.corp_id, agent_id=str(fwc.agent_id))
                private_pg.stop("immediate")
                attempts = await driver.send_text("zhangsan", "党费 50", msg_id="9001")  # WeCom retries non-200s
                await app.adapters[Platform.WECOM].drain()
                private_pg.start()
                await wait_until(lambda: _db_ok(running), 15, "database ok")
                if attempts[-1].status != 200:  # WeCom gave up for now; it delivers again later
                    await driver.send_text("zhangsan", "党费 50", msg_id="9001")
                await app.adapters[Platform.WECOM].drain()
            assert await inbound_rows(app, f"{fwc.agent_id}:9001") == 1
        finally:
            await stop_bot(running)
