"""WeCom end to end (issue 6): the whole bot on the selected backends, WeCom played by the fake server.

Every step goes over real HTTP: the callback driver posts encrypted callbacks to the bot's own aiohttp
routes (``/wecom/callback`` for the self-built app, ``/wecom/robot`` for the smart robot), and the bot
talks to ``FakeWeCom`` (gettoken, message/send, webhook/send, aibot/response). Nothing of ours is
mocked; time is the FakeClock (the fake server shares it), so "wait 60 s" is ``clock.advance``.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import csv
import datetime as dt
import io
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.clock import SHANGHAI, FakeClock
from bot.db.campaigns import save_response
from bot.db.tables import Campaign, ChatBinding, InboundMessage, Member, Org, OutboxMessage, Response
from bot.demo import DEMO_ROSTER
from bot.message import Platform
from bot.platforms.wecom import WeComAdapter
from bot.roster import import_roster_file
from tests.conftest import PG_URL, Running, start_bot, stop_bot
from tests.fakes.wecom_server import (
    FROM_IP,
    Attempt,
    CallbackDriver,
    FakeWeCom,
    Fault,
    spec_sign,
)

TOKEN = "DangJianAppToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ROBOT_TOKEN = "DangJianRobotToken"
ROBOT_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CHAT = "wrkSFfCgAAAAbranch1"  # the smart robot's chatid of 第一党支部's WeCom group
HOOK_KEY = "hook-a"

DEC_OPEN = dt.datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)  # dues 2026-12 announce
DEC_REMIND = dt.datetime(2026, 12, 12, 18, 0, tzinfo=SHANGHAI)  # dues 2026-12 remind -3d (deadline 12-15)

# 第一党支部 on WeCom (roster mobile -> 企业微信UserID as typed in the roster; the fake knows them all).
# 张三 is "ZhangSan" in WeCom: the roster import stores it lower-cased, WeCom ids are case-insensitive.
WECOM_IDS = {
    "13800000001": "member01",  # 王建国, 书记
    "13800000002": "member02",  # 李红梅
    "13800000003": "ZhangSan",  # 张三
    "13800000004": "lisi",  # 李四
    "13800000005": "wangwu",  # 王五
    "13800000006": "zhaoliu",  # 赵六
    "13800000007": "member07",  # 陈七
    "13800000008": "member08",  # 刘洋
}
BRANCH1 = ["王建国", "李红梅", "张三", "李四", "王五", "赵六", "陈七", "刘洋"]
ID_OF = dict(zip(BRANCH1, (u.lower() for u in WECOM_IDS.values()), strict=True))
ADMIN_MOBILE = "13800000014"  # 郑华, 管理员, on the local chat only
MONEY_RE = re.compile(r"\d+(?:\.\d+)?\s*元|¥|￥")


@dataclass
class Env:
    fake: FakeWeCom
    bot: Running
    clock: FakeClock
    http: aiohttp.ClientSession
    app: CallbackDriver  # WeCom posting the self-built app's callbacks
    robot: CallbackDriver  # WeCom posting the smart robot's callbacks

    @property
    def adapter(self) -> WeComAdapter:
        return cast(WeComAdapter, self.bot.app.adapters[Platform.WECOM])

    async def settle(self) -> None:
        """Let the acknowledged callbacks reach the core, then deliver what is due."""
        await self.adapter.drain()
        await self.bot.app.flush_outbox()

    async def dm(self, user: str, text: str, **kw: Any) -> list[Attempt]:
        """``user`` writes ``text`` to the app in WeCom (1:1)."""
        attempts = await self.app.send_text(user, text, create_time=int(self.clock.now().timestamp()), **kw)
        await self.settle()
        return attempts

    async def at_robot(self, user: str, text: str, msgid: str) -> str:
        """``user`` @-mentions the smart robot in the branch group; returns the response_code."""
        url = self.fake.response_url()
        attempts = await self.robot.send_robot_text(msgid, user, f"@党建助手 {text}", url, chatid=CHAT)
        assert [a.status for a in attempts] == [200]
        await self.settle()
        return url.rsplit("=", 1)[1]

    async def run_due(self, when: dt.datetime) -> None:
        self.clock.set(when)
        await self.bot.app.runner.run_due(when)
        await self.bot.app.flush_outbox()

    async def settle_retries(self, rounds: int = 10) -> None:
        """Flush; while rows wait for a retry, move the clock just past the latest next_attempt_at."""
        for _ in range(rounds):
            await self.bot.app.flush_outbox()
            pending = [r for r in await self.outbox() if r.status in ("pending", "sending")]
            if not pending:
                return
            self.clock.set(max(r.next_attempt_at for r in pending) + dt.timedelta(seconds=1))
        raise AssertionError(f"outbox did not settle: {[(r.id, r.status, r.last_error) for r in pending]}")

    async def scalar(self, stmt: Any) -> Any:
        async with self.bot.app.sessions() as session:
            return (await session.execute(stmt)).scalar_one()

    async def outbox(self, **where: Any) -> list[OutboxMessage]:
        async with self.bot.app.sessions() as session:
            stmt = select(OutboxMessage).filter_by(**where).order_by(OutboxMessage.id)
            return list((await session.execute(stmt)).scalars().all())

    async def responses(self) -> list[tuple[str, int | None, str]]:
        async with self.bot.app.sessions() as session:
            stmt = select(Member.name, Response.amount_fen, Response.platform).join(
                Member, Member.id == Response.member_id
            )
            return [tuple(r) for r in (await session.execute(stmt.order_by(Response.id))).all()]

    async def inbound_count(self, message_id: str | None = None) -> int:
        stmt = select(func.count()).select_from(InboundMessage).where(InboundMessage.platform == "wecom")
        if message_id is not None:
            stmt = stmt.where(InboundMessage.message_id == message_id)
        return int(await self.scalar(stmt))

    def sends_to(self, user: str) -> list[dict[str, Any]]:
        """Every message/send body the fake accepted for ``user`` (before its duplicate check)."""
        return [b for b in self.fake.requests["message/send"] if user.lower() in _touser(b)]

    def hook(self) -> list[Any]:
        return [d for d in self.fake.delivered if d.channel == "webhook" and d.to == HOOK_KEY]


def _touser(body: dict[str, Any]) -> set[str]:
    return {u.lower() for u in str(body.get("touser", "")).split("|") if u}


def _text(body: dict[str, Any]) -> str:
    kind = body.get("msgtype", "")
    part = body.get(kind) or {}
    return str(part.get("content") or part.get("description") or "")


def _roster_csv(path: Path) -> Path:
    """The demo roster with 企业微信UserID filled in for 第一党支部."""
    rows = list(csv.reader(io.StringIO(DEMO_ROSTER.read_text(encoding="utf-8"))))
    col = rows[0].index("企业微信UserID")
    for row in rows[1:]:
        row[col] = WECOM_IDS.get(row[1], "")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


MakeEnv = Callable[..., Awaitable[Env]]


@pytest.fixture
async def make_env(settings_factory: Any, clock: FakeClock, tmp_path: Path) -> AsyncIterator[MakeEnv]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def make(*, group: bool = True) -> Env:
        fake = FakeWeCom(clock=clock)
        await fake.__aenter__()
        cleanups.append(lambda: fake.__aexit__(None, None, None))
        wecom = {
            "enabled": True,
            "corp_id": fake.corp_id,
            "agent_id": str(fake.agent_id),
            "secret": fake.secret,
            "token": TOKEN,
            "encoding_aes_key": AES_KEY,
            "robot_token": ROBOT_TOKEN,
            "robot_encoding_aes_key": ROBOT_KEY,
            "api_base": fake.base_url,
        }
        groups = [
            {
                "platform": "wecom",
                "conversation_id": CHAT,
                "org": "第一党支部",
                "webhook_url": f"{fake.base_url}/cgi-bin/webhook/send?key={HOOK_KEY}",
            }
        ]
        overrides: dict[str, Any] = {"wecom": wecom, "demo.announce_current": False}
        if group:
            overrides["groups"] = groups
        settings = await settings_factory(**overrides)
        running = await start_bot(settings, clock)
        cleanups.append(lambda: stop_bot(running))
        async with running.app.sessions() as session, session.begin():
            await import_roster_file(session, _roster_csv(tmp_path / "名册.csv"), clock.now())
        http = aiohttp.ClientSession()
        cleanups.append(http.close)
        base = str(running.client.make_url("")).rstrip("/")
        return Env(
            fake=fake,
            bot=running,
            clock=clock,
            http=http,
            app=CallbackDriver.for_app(http, base, TOKEN, AES_KEY, fake.corp_id, agent_id=str(fake.agent_id)),
            robot=CallbackDriver.for_robot(http, base, ROBOT_TOKEN, ROBOT_KEY),
        )

    yield make
    for cleanup in reversed(cleanups):
        await cleanup()


def _missing_line(text: str) -> list[str]:
    first = text.splitlines()[0]
    assert first.startswith("以下同志尚未填报："), text
    return first.split("：", 1)[1].split("、")


# --- 1. the happy path: verify, answer 1:1 (with WeCom's retries), answer in the group, announce, remind


async def test_wecom_dues_walkthrough(make_env: MakeEnv) -> None:
    env = await make_env()
    fake = env.fake

    # URL verification of both callback URLs (WeCom's "save" button in the admin console).
    echo = await env.app.verify_url("5927315432189001")
    assert (echo.status, echo.body) == (200, "5927315432189001")
    echo = await env.robot.verify_url("8730516382")
    assert (echo.status, echo.body) == (200, "8730516382")

    # The scheduled opening: one group-robot webhook message announces December's dues.
    await env.run_due(DEC_OPEN)
    [announced] = env.hook()
    assert announced.content.startswith("【12月党费收缴】现已开始")
    assert fake.calls["webhook/send"] == 1

    # 张三 replies `党费 50` to the app; WeCom misses our answers and delivers it four times.
    attempts = await env.dm("ZhangSan", "党费 50", msg_id="6001", attempts=4)
    assert [a.status for a in attempts] == [200] * 4 and all(a.body == "" for a in attempts)
    assert await env.inbound_count("1000002:6001") == 1
    assert await env.responses() == [("张三", 5000, "wecom")]
    [confirm] = env.sends_to("ZhangSan")  # exactly one message/send reached him
    assert _touser(confirm) == {"zhangsan"}
    assert "已登记" in _text(confirm) and "50.00元" in _text(confirm)
    assert [d.content for d in fake.to("ZhangSan")] == [_text(confirm)]

    # 李四 @-mentions the smart robot in the group: the group hears "registered", only he sees the sum.
    code = await env.at_robot("lisi", "党费 50", msgid="robot-msg-1")
    [group_reply] = fake.to(code)
    assert group_reply.channel == "aibot"
    assert "已登记" in group_reply.content and "详情已私信" in group_reply.content
    assert "50" not in group_reply.content and not MONEY_RE.search(group_reply.content)
    [private] = env.sends_to("lisi")
    assert "50.00元" in _text(private)
    assert len(env.hook()) == 1  # the reply used response_url, not the group's webhook
    assert await env.responses() == [("张三", 5000, "wecom"), ("李四", 5000, "wecom")]
    assert await env.inbound_count() == 2

    # The reminder three days before the deadline: one webhook call naming exactly the missing six.
    calls_before, sends_before = fake.calls["webhook/send"], len(fake.requests["message/send"])
    await env.run_due(DEC_REMIND)
    assert fake.calls["webhook/send"] == calls_before + 1
    reminder = env.hook()[-1]
    missing = ["王建国", "李红梅", "王五", "赵六", "陈七", "刘洋"]
    assert _missing_line(reminder.content) == missing
    assert list(reminder.mentions) == [ID_OF[n] for n in missing]
    assert "zhangsan" not in reminder.mentions and "lisi" not in reminder.mentions
    assert len(fake.requests["message/send"]) == sends_before  # nobody was nudged 1:1 as well
    assert {r.status for r in await env.outbox(platform="wecom")} == {"sent"}


# --- 2. hostile or broken callbacks are refused without side effects, and the bot keeps serving


def _bad_padding_ciphertext() -> str:
    key = base64.b64decode(AES_KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(b"B" * 63 + b"\x30") + enc.finalize()).decode()  # pad 48 > 32


def _entity_bomb(inner: str) -> str:
    levels = ['<!ENTITY l0 "lollollollollollollollollollol">']
    levels += [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
    return f'<?xml version="1.0"?><!DOCTYPE xml [{"".join(levels)}]>{inner}'


async def test_hostile_callbacks_rejected_then_serving(make_env: MakeEnv) -> None:
    env = await make_env()
    await env.run_due(DEC_OPEN)
    driver = env.app
    ts = str(int(env.clock.now().timestamp()))

    # Wrong signature: a valid message whose msg_signature was tampered with.
    query, body = driver.signed(
        "<xml><ToUserName>x</ToUserName><FromUserName>ZhangSan</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>党费 50</Content><MsgId>7001</MsgId><AgentID>1000002</AgentID></xml>"
    )
    bad_sig = re.sub(r"msg_signature=([0-9a-f])", lambda m: "msg_signature=" + "01"[m.group(1) == "0"], query)
    statuses = {"wrong signature": (await driver.post(bad_sig, body)).status}

    # Right keys, but the ciphertext names another corp as its receiver.
    other_corp = CallbackDriver.for_app(
        env.http, driver.url.rsplit("/wecom", 1)[0], TOKEN, AES_KEY, "wwnotourcorp"
    )
    statuses["wrong corp id"] = (
        await other_corp.send_text("ZhangSan", "党费 50", msg_id="7002", attempts=1)
    )[0].status

    # Correctly signed garbage whose PKCS#7 padding is impossible.
    bad = _bad_padding_ciphertext()
    q = CallbackDriver.query(msg_signature=spec_sign(TOKEN, ts, "11", bad), timestamp=ts, nonce="11")
    statuses["bad padding"] = (
        await driver.post(q, f"<xml><Encrypt><![CDATA[{bad}]]></Encrypt></xml>".encode())
    ).status

    # Billion laughs in the envelope, and (signed and encrypted) in the decrypted plaintext.
    statuses["entity bomb (envelope)"] = (
        await driver.post(query, _entity_bomb("<xml><Encrypt>&l9;</Encrypt></xml>").encode())
    ).status
    statuses["entity bomb (plaintext)"] = (
        await driver.post(
            *driver.signed(_entity_bomb("<xml><MsgType>text</MsgType><Content>&l9;</Content></xml>"))
        )
    ).status

    # 1 MB, once with a Content-Length and once chunked (no length announced up front).
    big = b"<xml><Encrypt>" + b"A" * (1024 * 1024) + b"</Encrypt></xml>"
    statuses["1 MB body"] = (await driver.post(query, big)).status

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    async with env.http.post(driver.url + "?" + query, data=chunks()) as resp:
        statuses["1 MB chunked"] = resp.status

    assert statuses == {
        "wrong signature": 403,
        "wrong corp id": 403,
        "bad padding": 400,
        "entity bomb (envelope)": 400,
        "entity bomb (plaintext)": 400,
        "1 MB body": 413,
        "1 MB chunked": 413,
    }
    await env.settle()
    assert await env.inbound_count() == 0 and await env.responses() == []
    assert not env.sends_to("ZhangSan")

    # Still serving: health is fine and the next valid message is stored and answered.
    resp = await env.bot.client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["platforms"]["wecom"]["ok"] is True
    attempts = await env.dm("ZhangSan", "党费 50", msg_id="7003")
    assert [a.status for a in attempts] == [200]
    assert await env.inbound_count() == 1 and await env.responses() == [("张三", 5000, "wecom")]
    assert len(env.sends_to("ZhangSan")) == 1


# --- 3. an answer given on DingTalk counts: no WeCom nudge for it (1:1 nudges, one call for all)


async def test_answered_on_dingtalk_not_nudged_on_wecom(make_env: MakeEnv) -> None:
    env = await make_env(group=False)
    async with env.bot.app.sessions() as session, session.begin():
        # No group chat for 第一党支部 at all: its announcements and reminders go 1:1.
        branch = (await session.execute(select(Org).where(Org.name == "第一党支部"))).scalar_one()
        for binding in (
            await session.execute(select(ChatBinding).where(ChatBinding.org_id == branch.id))
        ).scalars():
            await session.delete(binding)
    fake = env.fake

    await env.run_due(DEC_OPEN)
    dues_announce = [b for b in fake.requests["message/send"] if "12月党费收缴" in _text(b)]
    assert len(dues_announce) == 1 and _touser(dues_announce[0]) == set(ID_OF.values())

    # 王五 answered on DingTalk (stored by the core like any answer, platform "dingtalk").
    async with env.bot.app.sessions() as session, session.begin():
        wang = (await session.execute(select(Member).where(Member.name == "王五"))).scalar_one()
        campaign = (
            await session.execute(
                select(Campaign).where(
                    Campaign.org_id == wang.org_id, Campaign.form_key == "dues", Campaign.period == "2026-12"
                )
            )
        ).scalar_one()
        await save_response(
            session, campaign=campaign, member=wang, values={"amount": 12000}, entered_by=wang,
            now=env.clock.now(), platform="dingtalk", amount_fen=12000,
        )  # fmt: skip
    # 张三 answered on WeCom.
    await env.dm("ZhangSan", "党费 45", msg_id="8001")

    sends_before = len(fake.requests["message/send"])
    await env.run_due(DEC_REMIND)
    new = fake.requests["message/send"][sends_before:]
    assert len(new) == 1, [(_touser(b), _text(b)[:30]) for b in new]  # one call for the identical nudges
    expected = {ID_OF[n] for n in BRANCH1 if n not in ("王五", "张三")}
    assert _touser(new[0]) == expected
    assert "wangwu" not in _touser(new[0])
    assert "12月党费收缴" in _text(new[0])
    assert await env.responses() == [("王五", 12000, "dingtalk"), ("张三", 4500, "wecom")]
    assert not env.hook()


# --- 4. injected WeCom errors: every row ends sent once WeCom recovers; 60020 alerts admins once


async def test_faults_recover_and_ip_denied_alerts_admin_once(make_env: MakeEnv) -> None:
    env = await make_env()
    fake = env.fake

    # The December opening meets system busy / HTTP 502 / system busy on message/send (all three of the
    # client's in-process attempts of the first call) and a 45009 frequency ban on the webhook.
    fake.fail("webhook/send", errcode=45009)
    fake.fail("message/send", Fault(errcode=-1), Fault(status=502), Fault(errcode=-1))
    await env.run_due(DEC_OPEN)
    now = env.clock.now()
    waiting = [r for r in await env.outbox(platform="wecom") if r.status == "pending"]
    [hook_row] = [r for r in waiting if r.payload["conversation_id"] == CHAT]
    assert "45009" in hook_row.last_error and hook_row.next_attempt_at - now >= dt.timedelta(seconds=60)
    busy = [r for r in waiting if r.payload["user_id"]]
    assert busy and all("-1" in r.last_error for r in busy)
    assert all(r.next_attempt_at - now >= dt.timedelta(seconds=30) for r in busy)
    delivered = len(fake.delivered)
    await env.bot.app.flush_outbox()  # nothing is due yet: no early retry
    assert len(fake.delivered) == delivered
    await env.settle_retries()
    assert {r.status for r in await env.outbox()} == {"sent"}
    assert len(env.hook()) == 1

    # The cached token is revoked (42001): refreshed inside the same delivery.
    fake.revoke_tokens(42001)
    tokens = fake.calls["gettoken"]
    await env.dm("ZhangSan", "党费 50", msg_id="9001")
    assert fake.calls["gettoken"] == tokens + 1 and len(env.sends_to("ZhangSan")) == 1
    # 40014 twice in a row (the refresh does not help this time): the row waits in the outbox.
    fake.fail("message/send", errcode=40014, times=2)
    await env.dm("lisi", "党费 60", msg_id="9002")
    [row] = [r for r in await env.outbox(platform="wecom", status="pending")]
    assert "40014" in row.last_error and row.next_attempt_at - env.clock.now() >= dt.timedelta(seconds=60)
    await env.settle_retries()
    assert len(env.sends_to("lisi")) == 1

    # Every row sent, and nobody got anything twice.
    assert {r.status for r in await env.outbox()} == {"sent"}
    seen = collections.Counter((d.channel, d.to.lower(), d.content) for d in fake.delivered)
    assert [k for k, n in seen.items() if n > 1] == []

    # 60020 (egress IP not trusted) on three different sends: failed for good, admins told once.
    fake.fail("message/send", errcode=60020, times=3)
    await env.app.send_text("zhaoliu", "帮助", msg_id="9101")
    await env.app.send_text("member07", "我的", msg_id="9102")
    await env.app.send_text("member08", "党费 30", msg_id="9103")
    await env.settle()
    denied = [r for r in await env.outbox(platform="wecom") if "60020" in r.last_error]
    assert len(denied) == 3 and {r.status for r in denied} == {"failed"}
    assert all("企业可信IP" in r.last_error for r in denied)
    fake.fail("message/send", errcode=60020)  # a later failing send: still no second alert
    await env.dm("ZhangSan", "我的", msg_id="9104")
    alerts = await env.outbox(reason="alert")
    assert len(alerts) == 1
    [alert] = alerts
    assert (alert.platform, alert.payload["user_id"], alert.status) == ("local", ADMIN_MOBILE, "sent")
    assert FROM_IP in alert.payload["text"] and "企业可信IP" in alert.payload["text"]
    assert {r.status for r in await env.outbox() if "60020" not in r.last_error} == {"sent"}


# --- /stats from the secretary in a WeCom DM (totals) and in the group (no money)


async def test_secretary_stats_over_wecom(make_env: MakeEnv) -> None:
    env = await make_env()
    await env.run_due(DEC_OPEN)
    await env.dm("ZhangSan", "党费 50", msg_id="10001")
    await env.at_robot("lisi", "党费 60", msgid="robot-10002")

    await env.dm("member01", "/stats", msg_id="10003")
    [stats] = [b for b in env.sends_to("member01") if "统计" in _text(b)]
    text = _text(stats)
    assert "已填报 2/8" in text and "合计 110.00 元" in text, text
    missing = next(line for line in text.splitlines() if line.startswith("未填报"))
    assert "张三" not in missing and "李四" not in missing and "王建国" in missing and "刘洋" in missing

    code = await env.at_robot("member01", "/stats", msgid="robot-10004")
    [group_stats] = env.fake.to(code)
    assert "2/8" in group_stats.content
    assert "合计" not in group_stats.content and not MONEY_RE.search(group_stats.content)


# --- storage down: the callback was already acknowledged, so the member must be told to resend


@contextlib.asynccontextmanager
async def storage_outage(env: Env) -> AsyncIterator[None]:
    """A real outage of the bot's database, undone on exit.

    PostgreSQL: the database stops accepting connections and the bot's open ones are terminated.
    SQLite: the pool is closed and the database file moved away (a fresh connection finds no tables).
    """
    app = env.bot.app
    if PG_URL:
        name = make_url(PG_URL).database
        admin = create_async_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            await conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                {"db": name},
            )
        try:
            yield
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            await admin.dispose()
        return
    db = Path(make_url(app.settings.database_url).database or "")
    aside = db.parent / "outage"
    aside.mkdir()
    await app.engine.dispose()
    files = [p for p in db.parent.glob(db.name + "*") if p.is_file()]
    for path in files:
        shutil.move(path, aside / path.name)
    try:
        yield
    finally:
        await app.engine.dispose()
        for path in db.parent.glob(db.name + "*"):
            path.unlink()
        for path in files:
            shutil.move(aside / path.name, path)


async def test_storage_outage_answers_503_so_wecom_redelivers(make_env: MakeEnv) -> None:
    env = await make_env()
    await env.run_due(DEC_OPEN)
    url = env.fake.response_url()
    async with storage_outage(env):
        dm = await env.app.send_text("ZhangSan", "党费 50", msg_id="11001")
        group = await env.robot.send_robot_text("robot-11002", "lisi", "@党建助手 党费 60", url, chatid=CHAT)
        # Not acknowledged: every delivery attempt (the first and WeCom's retries) gets a 503.
        assert dm and group and {a.status for a in dm + group} == {503}
        await env.adapter.drain()
    assert env.sends_to("ZhangSan") == []  # nobody is asked to resend: WeCom redelivers
    assert await env.responses() == [] and await env.inbound_count() == 0

    # Storage is back: WeCom delivers the same message again; it is stored once and confirmed as usual.
    await env.dm("ZhangSan", "党费 50", msg_id="11001")
    await env.dm("ZhangSan", "党费 50", msg_id="11001")
    assert await env.responses() == [("张三", 5000, "wecom")]
    assert await env.inbound_count() == 1
    assert "50.00元" in _text(env.sends_to("ZhangSan")[-1])
