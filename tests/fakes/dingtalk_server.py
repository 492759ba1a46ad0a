"""A fake DingTalk open platform speaking the wire protocol (fact sheet §1–§6, §9) on 127.0.0.1.

Usage::

    async with FakeDingTalk(clock=clock) as fake:          # or the ``fake_dingtalk`` fixture
        settings = fake.settings(qps=100)                  # DingTalkSettings pointing at the fake
        fake.inject("groupMessages", [("http", 403, {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"})])
        ...
        assert fake.calls["batchSend"] == 3
        assert fake.oto_messages[0]["user_ids"] == [...]

Endpoint names for ``calls``/``inject``: accessToken, gettoken, groupMessages, batchSend, sendBySession,
robot, upload, listsub, userlist, connections, connect. Faults: ``("http", status, json_body)`` answers
that instead of the real handler; ``("timeout", seconds)`` stalls, then answers 504.
Stream: ``push_bot_message`` / ``push_ping`` / ``push_disconnect`` / ``push_event`` send frames to the
newest open connection; ``wait_ack``/``wait_connections`` wait (bounded) for the client; ``redeliver``
re-sends a frame (DingTalk re-pushes even ACKed bot messages sometimes).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import WSMsgType, web

from bot.clock import Clock, SystemClock
from bot.kv.memory import MemoryKV
from bot.message import IncomingMessage
from bot.platforms.base import InboundResult
from bot.platforms.dingtalk.adapter import DingTalkAdapter
from bot.platforms.dingtalk.events import ContactEvent
from bot.platforms.dingtalk.settings import DingTalkSettings, GroupWebhook
from bot.platforms.dingtalk.sign import compute_sign

Handler = Callable[[web.Request], Any]


def sample_bot_message(**overrides: Any) -> dict[str, Any]:
    """The §2.1 group sample; override fields (e.g. conversationType="1") per test."""
    body: dict[str, Any] = {
        "msgtype": "text", "text": {"content": " 明天下午开会收到"}, "msgId": "msgA1b2C3==",
        "createAt": 1700000000000, "conversationType": "2", "conversationId": "cidXyZ123==",
        "conversationTitle": "第一党支部", "senderId": "$:LWCP_v1:$abc", "senderNick": "张三",
        "senderStaffId": "manager4220", "senderUnionId": "uNi0n", "senderCorpId": "dingcorp01",
        "senderPlatform": "Android", "isAdmin": False, "chatbotCorpId": "dingcorp01",
        "chatbotUserId": "$:LWCP_v1:$bot", "robotCode": "dingabc123",
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot", "staffId": ""}], "isInAtList": True,
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=9f8e7d",
        "sessionWebhookExpiredTime": 1700005400000,
    }
    body.update(overrides)
    return body


def signed_callback(body: dict[str, Any] | bytes, app_secret: str, timestamp_ms: int) -> tuple[dict[str, str], bytes]:
    """Headers and body of an HTTP-mode robot callback, signed as DingTalk signs it (§2.2)."""
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "timestamp": str(timestamp_ms),
               "sign": compute_sign(str(timestamp_ms), app_secret)}
    return headers, raw


@dataclass
class StreamConn:
    index: int
    ws: web.WebSocketResponse
    acks: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


class FakeDingTalk:
    def __init__(self, *, app_key: str = "dingfakeapp", app_secret: str = "fake-app-secret",
                 clock: Clock | None = None, token_ttl_s: int = 7200) -> None:
        self.app_key, self.app_secret = app_key, app_secret
        self.clock = clock or SystemClock()
        self.token_ttl_s = token_ttl_s
        self.calls: collections.Counter[str] = collections.Counter()
        self.group_messages: list[dict[str, Any]] = []
        self.oto_messages: list[dict[str, Any]] = []
        self.session_messages: list[dict[str, Any]] = []
        self.robot_messages: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.invalid_user_ids: set[str] = set()
        self.flow_controlled_user_ids: set[str] = set()
        self.tokens_issued: list[str] = []
        self.tickets: list[str] = []
        self.conns: list[StreamConn] = []
        self.log: list[str] = []  # "open#1", "close#1", ... in the order they happened
        self.frames: dict[str, dict[str, Any]] = {}
        self.close_on_connect = False  # accept the websocket, then hang up at once (a flapping gateway)
        self._tokens: dict[str, float] = {}
        self._open_tickets: set[str] = set()
        self._faults: dict[str, collections.deque[tuple[Any, ...]]] = {}
        self._sessions: dict[str, int] = {}
        self._robots: dict[str, dict[str, Any]] = {}
        self._children: dict[int, list[dict[str, Any]]] = {}
        self._members: dict[int, list[dict[str, Any]]] = {}
        self._cond = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDingTalk:
        app = web.Application(client_max_size=30 * 1024 * 1024)
        routes = [
            ("POST", "/v1.0/oauth2/accessToken", "accessToken", self._access_token),
            ("GET", "/gettoken", "gettoken", self._gettoken),
            ("POST", "/v1.0/robot/groupMessages/send", "groupMessages", self._group_send),
            ("POST", "/v1.0/robot/oToMessages/batchSend", "batchSend", self._batch_send),
            ("POST", "/robot/sendBySession", "sendBySession", self._send_by_session),
            ("POST", "/robot/send", "robot", self._robot_send),
            ("POST", "/media/upload", "upload", self._upload),
            ("POST", "/topapi/v2/department/listsub", "listsub", self._listsub),
            ("POST", "/topapi/v2/user/list", "userlist", self._user_list),
            ("POST", "/v1.0/gateway/connections/open", "connections", self._open_connection),
            ("GET", "/connect", "connect", self._connect),
        ]
        for method, path, name, handler in routes:
            app.router.add_route(method, path, self._wrap(name, handler))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.conns:
            if not conn.ws.closed:
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def settings(self, **overrides: Any) -> DingTalkSettings:
        values: dict[str, Any] = {"enabled": True, "app_key": self.app_key, "app_secret": self.app_secret,
                                  "api_base": self.base_url, "oapi_base": self.base_url}
        return DingTalkSettings(**(values | overrides))

    # --- test controls ---------------------------------------------------------------------------------

    def inject(self, endpoint: str, faults: list[tuple[Any, ...]]) -> None:
        self._faults.setdefault(endpoint, collections.deque()).extend(faults)

    def invalidate_tokens(self) -> None:
        self._tokens.clear()

    def add_session(self, ttl_ms: int = 5_400_000) -> tuple[str, int]:
        """A session webhook URL and its expiry (ms), as a robot message would carry them."""
        session, expires = uuid.uuid4().hex, self._now_ms() + ttl_ms
        self._sessions[session] = expires
        return f"{self.base_url}/robot/sendBySession?session={session}", expires

    def add_robot(self, secret: str = "SECfake", limit_per_min: int = 20) -> str:
        token = uuid.uuid4().hex
        self._robots[token] = {"secret": secret, "limit": limit_per_min, "sent": [], "blocked_until": 0.0}
        return f"{self.base_url}/robot/send?access_token={token}"

    def set_directory(self, departments: list[tuple[int, str, int]], members: dict[int, list[dict[str, Any]]]) -> None:
        """departments: (dept_id, name, parent_id); members: dept_id → user dicts (userid, name, ...)."""
        self._children = {}
        for dept_id, name, parent in departments:
            self._children.setdefault(parent, []).append({"dept_id": dept_id, "name": name, "parent_id": parent})
        self._members = members

    # --- plumbing --------------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _now_ms(self) -> int:
        return int(self._now() * 1000)

    def _wrap(self, name: str, handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.calls[name] += 1
            queue = self._faults.get(name)
            if queue:
                fault = queue.popleft()
                if fault[0] == "timeout":
                    await asyncio.sleep(fault[1])
                    return web.json_response({"code": "gateway.timeout"}, status=504)
                return web.json_response(fault[2], status=fault[1])
            result: web.StreamResponse = await handler(request)
            return result

        return wrapped

    def _valid(self, token: str | None) -> bool:
        return token is not None and self._tokens.get(token, 0.0) > self._now()

    def _v1_auth(self, request: web.Request) -> web.Response | None:
        if self._valid(request.headers.get("x-acs-dingtalk-access-token")):
            return None
        return web.json_response({"code": "InvalidAuthentication", "requestid": "fake",
                                  "message": "不合法的access_token"}, status=400)

    def _oapi_auth(self, request: web.Request) -> web.Response | None:
        if self._valid(request.query.get("access_token")):
            return None
        return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})

    def _issue_token(self) -> str:
        # Same token while valid, with its life extended (§1.2).
        live = [t for t, exp in self._tokens.items() if exp > self._now()]
        token = live[0] if live else uuid.uuid4().hex
        if not live:
            self.tokens_issued.append(token)
        self._tokens[token] = self._now() + self.token_ttl_s
        return token

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(predicate), timeout)

    # --- tokens ----------------------------------------------------------------------------------------

    async def _access_token(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"code": "MissingBody", "message": "body is mandatory"}, status=400)
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return web.json_response({"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret"},
                                     status=400)
        return web.json_response({"accessToken": self._issue_token(), "expireIn": self.token_ttl_s})

    async def _gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("appkey") != self.app_key or request.query.get("appsecret") != self.app_secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": self._issue_token(),
                                  "expires_in": self.token_ttl_s})

    # --- robot API -------------------------------------------------------------------------------------

    async def _robot_payload(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]] | web.Response:
        if (denied := self._v1_auth(request)) is not None:
            return denied
        body = await request.json()
        if body.get("robotCode") != self.app_key:
            return web.json_response({"code": "invalidParameter.robotCode.auth", "message": "robotCode"}, status=400)
        if len(body.get("msgParam", "").encode()) > 15000:
            return web.json_response({"code": "invalidParameter.msgParam.tooLong", "message": "too long"}, status=400)
        return body, json.loads(body["msgParam"])

    async def _group_send(self, request: web.Request) -> web.Response:
        parsed = await self._robot_payload(request)
        if isinstance(parsed, web.Response):
            return parsed
        body, param = parsed
        self.group_messages.append({"conversation_id": body["openConversationId"], "msg_key": body["msgKey"],
                                    "param": param})
        return web.json_response({"processQueryKey": uuid.uuid4().hex})

    async def _batch_send(self, request: web.Request) -> web.Response:
        parsed = await self._robot_payload(request)
        if isinstance(parsed, web.Response):
            return parsed
        body, param = parsed
        users = list(body.get("userIds") or [])
        if not users or len(users) > 20:
            return web.json_response({"code": "invalidParameter.userIds.overMax", "message": "max 20"}, status=400)
        invalid = [u for u in users if u in self.invalid_user_ids]
        flow = [u for u in users if u in self.flow_controlled_user_ids and u not in invalid]
        sent = [u for u in users if u not in invalid and u not in flow]
        self.oto_messages.append({"user_ids": sent, "msg_key": body["msgKey"], "param": param})
        return web.json_response({"processQueryKey": uuid.uuid4().hex, "invalidStaffIdList": invalid,
                                  "flowControlledStaffIdList": flow})

    # --- webhooks --------------------------------------------------------------------------------------

    async def _send_by_session(self, request: web.Request) -> web.Response:
        session = request.query.get("session", "")
        if self._sessions.get(session, 0) <= self._now_ms():
            return web.json_response({"errcode": 300001, "errmsg": "session 不存在"})
        self.session_messages.append({"session": session, "body": await request.json()})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _robot_send(self, request: web.Request) -> web.Response:
        robot = self._robots.get(request.query.get("access_token", ""))
        if robot is None:
            return web.json_response({"errcode": 400101, "errmsg": "access_token不存在"})
        if robot["secret"]:
            ts = request.query.get("timestamp", "0")
            fresh = ts.isdigit() and abs(self._now_ms() - int(ts)) <= 3_600_000
            if not fresh or request.query.get("sign") != compute_sign(ts, robot["secret"]):
                return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        now = self._now()
        robot["sent"] = [t for t in robot["sent"] if now - t < 60]
        if robot["blocked_until"] > now or len(robot["sent"]) >= robot["limit"]:
            robot["blocked_until"] = max(robot["blocked_until"], now + 600)
            return web.json_response({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        robot["sent"].append(now)
        self.robot_messages.append({"access_token": request.query["access_token"], "body": await request.json()})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    # --- media and directory ---------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        if (denied := self._oapi_auth(request)) is not None:
            return denied
        form = await request.post()
        media = form.get("media")
        if not isinstance(media, web.FileField) or form.get("type") not in ("image", "file", "voice", "video"):
            return web.json_response({"errcode": 40004, "errmsg": "bad media"})
        media_id = f"$iAEK{uuid.uuid4().hex[:12]}"
        self.uploads.append({"type": form["type"], "filename": media.filename, "size": len(media.file.read()),
                             "media_id": media_id})
        return web.json_response({"errcode": 0, "errmsg": "ok", "media_id": media_id, "type": form["type"],
                                  "created_at": self._now_ms()})

    async def _listsub(self, request: web.Request) -> web.Response:
        if (denied := self._oapi_auth(request)) is not None:
            return denied
        dept_id = int((await request.json())["dept_id"])
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": self._children.get(dept_id, [])})

    async def _user_list(self, request: web.Request) -> web.Response:
        if (denied := self._oapi_auth(request)) is not None:
            return denied
        body = await request.json()
        cursor, size = int(body.get("cursor", 0)), int(body.get("size", 0))
        if not 0 < size <= 100:
            return web.json_response({"errcode": 40035, "errmsg": "size"})
        members = self._members.get(int(body["dept_id"]), [])
        page = members[cursor : cursor + size]
        more = cursor + size < len(members)
        result = {"has_more": more, "list": page} | ({"next_cursor": cursor + size} if more else {})
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": result})

    # --- stream gateway --------------------------------------------------------------------------------

    async def _open_connection(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return web.json_response({"requestid": "fake", "code": "authFailed", "message": "鉴权失败"}, status=401)
        ticket = uuid.uuid4().hex
        self.tickets.append(ticket)
        self._open_tickets.add(ticket)
        return web.json_response({"endpoint": f"{self.base_url.replace('http', 'ws', 1)}/connect", "ticket": ticket})

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._open_tickets:  # one connection per ticket
            return web.json_response({"code": "invalidTicket"}, status=403)
        self._open_tickets.discard(ticket)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = StreamConn(index=len(self.conns) + 1, ws=ws)
        self.conns.append(conn)
        self.log.append(f"open#{conn.index}")
        await self._notify()
        if self.close_on_connect:
            await ws.close()
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                conn.acks.append(json.loads(msg.data))
                await self._notify()
        conn.closed = True
        self.log.append(f"close#{conn.index}")
        await self._notify()
        return ws

    @property
    def acks(self) -> list[dict[str, Any]]:
        return [ack for conn in self.conns for ack in conn.acks]

    def open_conns(self) -> list[StreamConn]:
        return [c for c in self.conns if not c.closed and not c.ws.closed]

    async def wait_connections(self, count: int, timeout: float = 5.0) -> StreamConn:
        await self._wait(lambda: len(self.conns) >= count, timeout)
        return self.conns[count - 1]

    async def wait_ack(self, message_id: str, timeout: float = 5.0) -> dict[str, Any]:
        def found() -> bool:
            return any(a.get("headers", {}).get("messageId") == message_id for a in self.acks)

        await self._wait(found, timeout)
        return next(a for a in self.acks if a["headers"]["messageId"] == message_id)

    async def wait_closed(self, index: int, timeout: float = 5.0) -> None:
        await self._wait(lambda: self.conns[index - 1].closed, timeout)

    async def push(self, frame_type: str, topic: str, data: dict[str, Any], message_id: str | None = None,
                   **headers: str) -> str:
        message_id = message_id or uuid.uuid4().hex
        frame = {"specVersion": "1.0", "type": frame_type, "data": json.dumps(data, ensure_ascii=False),
                 "headers": {"appId": "fake", "connectionId": "fake", "contentType": "application/json",
                             "messageId": message_id, "time": str(self._now_ms()), "topic": topic} | headers}
        self.frames[message_id] = frame
        await self.open_conns()[-1].ws.send_json(frame)
        return message_id

    async def push_bot_message(self, body: dict[str, Any], message_id: str | None = None) -> str:
        return await self.push("CALLBACK", "/v1.0/im/bot/messages/get", body, message_id)

    async def push_ping(self, opaque: str = "123-dsfs") -> str:
        return await self.push("SYSTEM", "ping", {"opaque": opaque})

    async def push_disconnect(self) -> str:
        return await self.push("SYSTEM", "disconnect", {"reason": "connection is expired"})

    async def push_event(self, event_type: str, user_ids: list[str], event_id: str) -> str:
        now = str(self._now_ms())
        return await self.push("EVENT", "*", {"timeStamp": now, "userId": user_ids}, eventType=event_type,
                               eventId=event_id, eventCorpId="dingcorp01", eventBornTime=now)

    async def redeliver(self, message_id: str) -> None:
        await self.open_conns()[-1].ws.send_json(self.frames[message_id])

    async def redeliver_unacked(self) -> list[str]:
        acked = {a.get("headers", {}).get("messageId") for a in self.acks}
        pending = [mid for mid in self.frames if mid not in acked]
        for mid in pending:
            await self.redeliver(mid)
        return pending


@pytest_asyncio.fixture
async def fake_dingtalk() -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(clock=SystemClock(dt.UTC)) as fake:
        yield fake


@dataclass
class AdapterRig:
    """A DingTalkAdapter wired to a MemoryKV, recording admin alerts, sink input and contact events."""

    kv: MemoryKV
    adapter: DingTalkAdapter = field(init=False)
    alerts: list[tuple[str, str]] = field(default_factory=list)
    received: list[IncomingMessage] = field(default_factory=list)
    events: list[ContactEvent] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def alert(self, key: str, text: str) -> None:
        self.alerts.append((key, text))

    async def sink(self, msg: IncomingMessage) -> InboundResult:
        self.received.append(msg)
        self._arrived.set()
        return InboundResult()

    async def on_event(self, event: ContactEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()


@asynccontextmanager
async def adapter_rig(
    settings: DingTalkSettings, *, clock: Clock | None = None, kv: MemoryKV | None = None,
    groups: Sequence[GroupWebhook] = (), sleep: Callable[[float], Awaitable[None]] | None = None,
    start: bool = False, http_timeout_s: float = 2.0, stream_consumer: bool = True,
) -> AsyncIterator[AdapterRig]:
    clock = clock or SystemClock(dt.UTC)
    kv = kv or MemoryKV(clock)
    rig = AdapterRig(kv)
    rig.adapter = DingTalkAdapter(settings, list(groups), kv, clock, aiohttp.ClientSession, rig.alert,
                                  on_contact_event=rig.on_event, sleep=sleep or asyncio.sleep,
                                  http_timeout_s=http_timeout_s, stream_consumer=stream_consumer)
    if start:
        await rig.adapter.start(rig.sink)
    try:
        yield rig
    finally:
        await rig.adapter.stop()
