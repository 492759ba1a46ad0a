"""A fake WeCom server on 127.0.0.1 (random port) and a callback driver that plays WeCom's side.

Server (``FakeWeCom``, an async context manager; fixture ``fake_wecom``): gettoken (7200 s, revocable
as 40014 or 42001), message/send (agentid check, ≤1000 touser, lower-cased ``invaliduser``, 81013 when
all are invalid, duplicate check), webhook/send (per key, 21st in 60 s → 45009), webhook/upload_media,
media/upload (string ``created_at``), department/list, user/list, user/simplelist and the smart robot's
aibot/response (one call per response_code). ``fail(endpoint, ...)`` queues faults (errcode, HTTP
status, delay); ``calls`` counts requests per endpoint; ``delivered`` logs every message per recipient.

Driver (``CallbackDriver``): encrypts and signs with its own spec implementation (not the bot's code),
percent-encodes query values with ``quote(v, safe="")`` and POSTs like WeCom, retrying up to 3 more
times on non-200 or slow answers.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import hashlib
import io
import itertools
import json
import secrets
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from yarl import URL

from bot.clock import Clock, FakeClock

FROM_IP = "203.0.113.7"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ENDPOINTS = {
    "gettoken": ("GET", "/cgi-bin/gettoken"),
    "message/send": ("POST", "/cgi-bin/message/send"),
    "webhook/send": ("POST", "/cgi-bin/webhook/send"),
    "webhook/upload_media": ("POST", "/cgi-bin/webhook/upload_media"),
    "media/upload": ("POST", "/cgi-bin/media/upload"),
    "department/list": ("GET", "/cgi-bin/department/list"),
    "user/list": ("GET", "/cgi-bin/user/list"),
    "user/simplelist": ("GET", "/cgi-bin/user/simplelist"),
    "aibot/response": ("POST", "/cgi-bin/aibot/response"),
}


@dataclass
class Fault:
    errcode: int | None = None
    errmsg: str = ""
    status: int | None = None  # HTTP status instead of a JSON error (e.g. 502)
    delay: float = 0.0  # real seconds before answering (client timeouts)


@dataclass(frozen=True)
class FakeUser:
    userid: str
    name: str
    departments: tuple[int, ...] = (1,)
    status: int = 1


@dataclass(frozen=True)
class Delivered:
    channel: str  # "app" | "webhook" | "aibot"
    to: str  # userid, webhook key or response_code
    msgtype: str
    content: str  # text/markdown content, card title, or media_id
    mentions: tuple[str, ...] = ()
    body: dict[str, Any] = field(default_factory=dict, compare=False)


def _ok(**extra: Any) -> web.Response:
    return web.json_response({"errcode": 0, "errmsg": "ok", **extra})


def _err(code: int, msg: str, **extra: Any) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": msg, **extra})


def _content(body: dict[str, Any]) -> str:
    kind = body.get("msgtype", "")
    part = body.get(kind) or {}
    return str(part.get("content") or part.get("title") or part.get("media_id") or part.get("md5") or "")


class FakeWeCom:
    def __init__(
        self,
        *,
        corp_id: str = "wwfakecorp0000001",
        secret: str = "fake-app-secret",
        agent_id: int = 1000002,
        users: list[FakeUser] | None = None,
        departments: dict[int, str] | None = None,
        webhook_keys: tuple[str, ...] = ("hook-a", "hook-b"),
        clock: Clock | None = None,
    ) -> None:
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.clock: Clock = clock or FakeClock(dt.datetime(2024, 6, 3, 9, 0, tzinfo=dt.UTC))
        self.departments = departments or {1: "机关党委", 2: "第一党支部", 3: "第二党支部"}
        self.users = {u.userid.lower(): u for u in users or default_users()}
        self.webhook_keys = set(webhook_keys)
        self.calls: collections.Counter[str] = collections.Counter()
        self.delivered: list[Delivered] = []
        self.media: dict[str, tuple[str, bytes]] = {}
        self.requests: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
        self._tokens: dict[str, tuple[float, int]] = {}  # token -> (expires_at, errcode when revoked or 0)
        self._hook_sent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._response_codes: dict[str, bool] = {}  # code -> used
        self._dup: dict[str, float] = {}
        self._seq = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- control ------------------------------------------------------------------------------

    def fail(self, endpoint: str, *faults: Fault, errcode: int | None = None, times: int = 1) -> None:
        """Queue faults for the next calls to ``endpoint``; ``errcode=60020`` gets a ``from ip`` errmsg."""
        if endpoint not in ENDPOINTS:
            raise KeyError(endpoint)
        queued = list(faults) or [Fault(errcode=errcode) for _ in range(times)]
        self._faults[endpoint].extend(queued)

    def revoke_tokens(self, errcode: int = 40014) -> None:
        """Every issued token now fails with ``errcode`` (40014 invalid or 42001 expired)."""
        self._tokens = {t: (exp, errcode) for t, (exp, _) in self._tokens.items()}

    def response_url(self, code: str | None = None) -> str:
        code = code or f"RC{next(self._seq)}"
        self._response_codes[code] = False
        return f"{self.base_url}/cgi-bin/aibot/response?response_code={code}"

    def to(self, recipient: str) -> list[Delivered]:
        return [d for d in self.delivered if d.to == recipient]

    @property
    def now(self) -> float:
        return self.clock.now().timestamp()

    # --- lifecycle -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        for name, (method, path) in ENDPOINTS.items():
            handler = getattr(self, "_h_" + name.replace("/", "_"))
            app.router.add_route(method, path, self._wrap(name, handler))
        return app

    async def __aenter__(self) -> FakeWeCom:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _wrap(self, name: str, handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.calls[name] += 1
            fault = self._faults[name].popleft() if self._faults[name] else None
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    return web.Response(status=fault.status, text="fake upstream error")
                if fault.errcode is not None:
                    return _err(fault.errcode, fault.errmsg or self._errmsg(fault.errcode))
            return await handler(request)

        return wrapped

    def _errmsg(self, code: int) -> str:
        if code == 60020:
            return f"not allow to access from your ip, hint: [{int(self.now)}_fake], from ip: {FROM_IP}, more info at https://open.work.weixin.qq.com/devtool/query?e=60020"
        return {
            -1: "system busy",
            40014: "invalid access_token",
            42001: "access_token expired",
            45009: "api freq out of limit",
            45033: "api concurrent out of limit",
        }.get(code, "fake error")

    def _auth(self, request: web.Request) -> web.Response | None:
        entry = self._tokens.get(request.query.get("access_token", ""))
        if entry is None:
            return _err(40014, "invalid access_token")
        expires_at, revoked = entry
        if revoked:
            return _err(revoked, self._errmsg(revoked))
        return _err(42001, "access_token expired") if self.now >= expires_at else None

    # --- endpoints -------------------------------------------------------------------------------

    async def _h_gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.corp_id or request.query.get("corpsecret") != self.secret:
            return _err(40001, "invalid credential")
        token = f"fake-token-{next(self._seq)}-" + secrets.token_hex(8)
        self._tokens[token] = (self.now + 7200, 0)
        return _ok(access_token=token, expires_in=7200)

    async def _h_message_send(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        body = await request.json()
        self.requests["message/send"].append(body)
        if body.get("agentid") != self.agent_id:
            return _err(301002, "not allow to operate another agent")
        touser = [u for u in str(body.get("touser", "")).split("|") if u]
        if not touser or len(touser) > 1000:
            return _err(40058, f"touser must list 1..1000 users, got {len(touser)}")
        if self._duplicate(body):
            return _ok(invaliduser="", msgid=f"dup-{next(self._seq)}")
        valid = [u for u in touser if u.lower() in self.users]
        invalid = "|".join(u.lower() for u in touser if u.lower() not in self.users)
        if not valid:
            return _err(81013, "user & party & tag all invalid", invaliduser=invalid)
        for user in valid:
            self.delivered.append(
                Delivered("app", self.users[user.lower()].userid, body["msgtype"], _content(body), body=body)
            )
        return _ok(invaliduser=invalid, msgid=f"msg-{next(self._seq)}")

    def _duplicate(self, body: dict[str, Any]) -> bool:
        if not body.get("enable_duplicate_check"):
            return False
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        seen = self._dup.get(digest)
        self._dup[digest] = self.now
        return seen is not None and self.now - seen < float(body.get("duplicate_check_interval") or 1800)

    async def _h_webhook_send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        if key not in self.webhook_keys:
            return _err(93000, "invalid webhook url")
        sent = self._hook_sent[key]
        while sent and self.now - sent[0] >= 60:
            sent.popleft()
        if len(sent) >= 20:
            return _err(45009, "api freq out of limit")
        body = await request.json()
        kind = body.get("msgtype", "")
        limit = {"text": 2048, "markdown": 4096}.get(kind, 10**9)
        if len(_content(body).encode()) > limit:
            return _err(45002, "content size out of limit")
        sent.append(self.now)
        mentions = tuple((body.get("text") or {}).get("mentioned_list") or ())
        self.delivered.append(Delivered("webhook", key, kind, _content(body), mentions, body))
        return _ok()

    async def _upload(self, request: web.Request) -> web.Response:
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, aiohttp.BodyPartReader) or part.name != "media" or not part.filename:
            return _err(40004, "multipart part 'media' with a filename is required")
        data = bytes(await part.read())
        if len(data) <= 5:
            return _err(40006, "media size must be > 5 bytes")
        media_id = f"media-{next(self._seq)}"
        self.media[media_id] = (part.filename, data)
        kind = request.query.get("type", "")
        return web.json_response(
            {"errcode": 0, "errmsg": "", "type": kind, "media_id": media_id, "created_at": str(int(self.now))}
        )

    async def _h_webhook_upload_media(self, request: web.Request) -> web.Response:
        if request.query.get("key", "") not in self.webhook_keys:
            return _err(93000, "invalid webhook url")
        return await self._upload(request)

    async def _h_media_upload(self, request: web.Request) -> web.Response:
        return denied if (denied := self._auth(request)) is not None else await self._upload(request)

    async def _h_department_list(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        rows = [
            {"id": i, "name": n, "parentid": 0 if i == 1 else 1, "order": i}
            for i, n in self.departments.items()
        ]
        return _ok(department=rows)

    def _members(self, request: web.Request) -> list[FakeUser]:
        dept = int(request.query.get("department_id", "0"))
        return [u for u in self.users.values() if dept in u.departments]

    async def _h_user_list(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        rows = [
            {
                "userid": u.userid,
                "name": u.name,
                "department": list(u.departments),
                "status": u.status,
                "mobile": "",
            }
            for u in self._members(request)
        ]
        return _ok(userlist=rows)

    async def _h_user_simplelist(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        return _ok(
            userlist=[
                {"userid": u.userid, "name": u.name, "department": list(u.departments)}
                for u in self._members(request)
            ]
        )

    async def _h_aibot_response(self, request: web.Request) -> web.Response:
        code = request.query.get("response_code", "")
        if self._response_codes.get(code, True):
            return _err(40058, "response_code invalid, expired or already used")
        self._response_codes[code] = True
        body = await request.json()
        self.delivered.append(Delivered("aibot", code, body.get("msgtype", ""), _content(body), body=body))
        return _ok()


def default_users() -> list[FakeUser]:
    return [
        FakeUser("ZhangSan", "张三", (2,)),
        FakeUser("lisi", "李四", (2,)),
        FakeUser("wangwu", "王五", (3,)),
        FakeUser("zhaoliu", "赵六", (2, 3)),
        FakeUser("retired01", "钱七", (3,), status=5),
    ] + [FakeUser(f"member{i:02d}", f"党员{i:02d}", (2,)) for i in range(1, 31)]


@pytest_asyncio.fixture
async def fake_wecom() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as fake:
        yield fake


# --- WeCom's side of the callback: an independent spec implementation ---------------------------


def spec_sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def spec_encrypt(encoding_aes_key: str, receive_id: str, plaintext: str, prefix: bytes | None = None) -> str:
    key = base64.b64decode(encoding_aes_key + "=")
    msg = plaintext.encode()
    raw = (prefix or secrets.token_hex(8).encode()) + struct.pack("!I", len(msg)) + msg + receive_id.encode()
    padder = padding.PKCS7(256).padder()  # WeCom pads to 32-byte blocks
    padded = padder.update(raw) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def app_text_xml(
    corp_id: str, agent_id: str, from_user: str, content: str, msg_id: str, create_time: int
) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[{from_user}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{agent_id}</AgentID></xml>"
    )


def robot_text_json(msgid: str, userid: str, content: str, response_url: str, chatid: str = "") -> str:
    payload: dict[str, Any] = {
        "msgid": msgid,
        "aibotid": "AIBOTID",
        "chattype": "group" if chatid else "single",
        "from": {"userid": userid},
        "response_url": response_url,
        "msgtype": "text",
        "text": {"content": content},
    }
    if chatid:
        payload["chatid"] = chatid
    return json.dumps(payload, ensure_ascii=False)


@dataclass(frozen=True)
class Attempt:
    status: int | None  # None: timed out (WeCom gave up waiting)
    body: str
    elapsed: float


class CallbackDriver:
    """Plays WeCom posting callbacks to the bot: ``for_app`` (XML, receive id = corp id) or ``for_robot`` (JSON, "")."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        aes_key: str,
        receive_id: str,
        *,
        json_envelope: bool,
        agent_id: str = "1000002",
        timeout: float = 5.0,
    ) -> None:
        self.session, self.url, self.token, self.aes_key = session, url, token, aes_key
        self.receive_id, self.json_envelope, self.agent_id, self.timeout = (
            receive_id,
            json_envelope,
            agent_id,
            timeout,
        )
        self._seq = itertools.count(7_000_000_000_000_000_001)

    @classmethod
    def for_app(
        cls, session: aiohttp.ClientSession, base_url: str, token: str, aes_key: str, corp_id: str, **kw: Any
    ) -> CallbackDriver:
        return cls(session, base_url + "/wecom/callback", token, aes_key, corp_id, json_envelope=False, **kw)

    @classmethod
    def for_robot(
        cls, session: aiohttp.ClientSession, base_url: str, token: str, aes_key: str, **kw: Any
    ) -> CallbackDriver:
        return cls(session, base_url + "/wecom/robot", token, aes_key, "", json_envelope=True, **kw)

    def signed(
        self,
        plaintext: str,
        *,
        prefix: bytes | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> tuple[str, bytes]:
        """(query string, body) for a POST carrying ``plaintext``."""
        encrypt = spec_encrypt(self.aes_key, self.receive_id, plaintext, prefix)
        ts, nonce = timestamp or str(int(time.time())), nonce or str(secrets.randbelow(10**9))
        query = self.query(msg_signature=spec_sign(self.token, ts, nonce, encrypt), timestamp=ts, nonce=nonce)
        if self.json_envelope:
            return query, json.dumps({"encrypt": encrypt}).encode()
        envelope = f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        return query, envelope.encode()

    @staticmethod
    def query(**params: str) -> str:
        return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())

    async def post(self, query: str, body: bytes) -> Attempt:
        started = time.monotonic()
        url = yarl_url(f"{self.url}?{query}")
        try:
            async with self.session.post(
                url,
                data=io.BytesIO(body),  # BytesIO: aiohttp warns about big raw bodies
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                return Attempt(resp.status, await resp.text(), time.monotonic() - started)
        except TimeoutError:
            return Attempt(None, "", time.monotonic() - started)

    async def deliver(self, plaintext: str, *, attempts: int | None = None) -> list[Attempt]:
        """WeCom's delivery: retry up to 3 more times unless the bot answers 200 in time.

        ``attempts=N`` forces exactly N deliveries (WeCom missed our answers), each freshly encrypted."""
        results: list[Attempt] = []
        for _ in range(attempts or 4):
            results.append(await self.post(*self.signed(plaintext)))
            last = results[-1]
            if attempts is None and last.status == 200 and last.elapsed < self.timeout:
                break
        return results

    async def send_text(
        self,
        from_user: str,
        content: str,
        *,
        msg_id: str | None = None,
        create_time: int | None = None,
        attempts: int | None = None,
    ) -> list[Attempt]:
        msg_id = msg_id or str(next(self._seq))
        xml = app_text_xml(
            self.receive_id, self.agent_id, from_user, content, msg_id, create_time or int(time.time())
        )
        return await self.deliver(xml, attempts=attempts)

    async def send_robot_text(
        self,
        msgid: str,
        userid: str,
        content: str,
        response_url: str,
        chatid: str = "",
        *,
        attempts: int | None = None,
    ) -> list[Attempt]:
        return await self.deliver(
            robot_text_json(msgid, userid, content, response_url, chatid), attempts=attempts
        )

    async def verify_url(self, echo_plain: str) -> Attempt:
        encrypt = spec_encrypt(self.aes_key, self.receive_id, echo_plain)
        ts, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        query = self.query(
            msg_signature=spec_sign(self.token, ts, nonce, encrypt),
            timestamp=ts,
            nonce=nonce,
            echostr=encrypt,
        )
        async with self.session.get(yarl_url(f"{self.url}?{query}")) as resp:
            return Attempt(resp.status, await resp.text(), 0.0)


def yarl_url(url: str) -> URL:
    """Send the query exactly as built (``%2B`` must stay ``%2B``)."""
    return URL(url, encoded=True)
