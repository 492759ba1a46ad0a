"""DingTalk Stream mode, implemented directly on aiohttp from the documented wire protocol (fact sheet §2.3).

Why not the official ``dingtalk-stream`` SDK: its ``open_connection`` and token calls use synchronous
``requests`` inside coroutines, which would block our event loop, and its keepalive can hang forever in an
unguarded ``ws.ping()``, leaving a silent dead socket (§11). Here:

- ``POST /v1.0/gateway/connections/open`` → one-use ticket → ``ws_connect(endpoint?ticket=…)``;
- every frame is ACKed immediately (before any processing), SYSTEM ``ping`` echoes its ``opaque``;
- SYSTEM ``disconnect`` → open a NEW connection (new ticket) first, then close the old one;
- watchdog: no frame for ``stream_ping_timeout_s`` → close and reconnect; websocket pings via aiohttp's
  ``heartbeat`` (which closes the socket when the pong does not come back in time);
- reconnect with exponential back-off and jitter (1 s doubling, cap 60 s, injectable sleep);
- redelivered ``messageId``s are dropped in-process (the core also dedupes ``msgId`` across instances).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import aiohttp
from yarl import URL

from bot.errors import PlatformAPIError
from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.limits import NowFn, SleepFn
from bot.platforms.dingtalk.runtime import SessionHolder, TaskSet

log = logging.getLogger("bot.platforms.dingtalk.stream")

BOT_TOPICS = frozenset({"/v1.0/im/bot/messages/get", "/v1.0/im/bot/messages/delegate"})
SUBSCRIPTIONS = [{"type": "EVENT", "topic": "*"}, {"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}]
USER_AGENT = "dangjian-bot/0.1 (python-aiohttp)"
BACKOFF_BASE_S, BACKOFF_CAP_S = 1.0, 60.0
SEEN_TTL_S, SEEN_MAX = 300.0, 10_000
OPEN_TIMEOUT_S = 15.0
BOT_ACK_DATA = json.dumps({"response": None})
EVENT_ACK_DATA = json.dumps({"status": "SUCCESS", "message": "success"})

BotHandler = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
EventHandler = Callable[[Mapping[str, Any], Mapping[str, Any]], Coroutine[Any, Any, None]]
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


class StreamClient:
    def __init__(
        self, client: DingTalkClient, sessions: SessionHolder, tasks: TaskSet, *, on_bot_message: BotHandler,
        on_event: EventHandler, sleep: SleepFn = asyncio.sleep, rng: Callable[[], float] = random.random,
        monotonic: NowFn = time.monotonic,
    ) -> None:
        self._client = client
        self._settings = client.settings
        self._sessions = sessions
        self._tasks = tasks
        self._on_bot_message = on_bot_message
        self._on_event = on_event
        self._sleep = sleep
        self._rng = rng
        self._monotonic = monotonic
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connections = 0  # successful websocket connects, for health and tests
        self.last_frame_at: float | None = None

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dingtalk-stream")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def backoff(self, attempt: int) -> float:
        base = min(BACKOFF_CAP_S, BACKOFF_BASE_S * (1 << min(attempt, 16)))
        return base / 2 + self._rng() * base / 2  # "equal jitter": never 0, never above the cap

    async def _run(self) -> None:
        attempt = 0
        try:
            while True:
                try:
                    if self._ws is None:
                        self._ws = await self._connect()
                    reason, saw_frames = await self._serve(self._ws)
                    # A socket that delivered frames, or lived a whole watchdog period, was healthy:
                    # reconnect at once. Only failures to connect (or instant closes) back off.
                    healthy = saw_frames or reason == "silent"
                    if healthy:
                        attempt = 0
                    if reason == "disconnect":
                        new_ws = await self._connect()  # new ticket first: the old socket gets no more pushes
                        await self._close()
                        self._ws = new_ws
                        continue
                    await self._close()
                    if healthy:
                        continue
                except Exception as exc:  # noqa: BLE001 - the stream must outlive any single failure
                    log.warning("dingtalk stream error (%s: %s); reconnecting", type(exc).__name__, exc)
                    await self._close()
                    if isinstance(exc, PlatformAPIError) and exc.token_invalid:  # authFailed: bad credentials
                        await self._client.credentials_rejected(exc.code)
                await self._sleep(self.backoff(attempt))
                attempt += 1
        finally:
            await self._close()

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            body = await self._client.post_json(
                f"{self._settings.api_base}/v1.0/gateway/connections/open",
                {"clientId": self._settings.app_key, "clientSecret": self._settings.app_secret,
                 "subscriptions": SUBSCRIPTIONS, "ua": USER_AGENT},
            )
            # The ticket is valid once, for 90 s: use it right away, never store it.
            url = URL(str(body["endpoint"])).update_query(ticket=str(body["ticket"]))
            heartbeat = min(30.0, self._settings.stream_ping_timeout_s / 2)
            ws = await self._sessions.get().ws_connect(url, heartbeat=heartbeat)
        self.connections += 1
        log.info("dingtalk stream connected (#%d)", self.connections)
        return ws

    async def _close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            await ws.close()

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[str, bool]:
        saw_frames = False
        loop = asyncio.get_running_loop()
        silence = self._settings.stream_ping_timeout_s
        deadline = loop.time() + silence
        while True:
            try:
                # Watchdog on an absolute deadline that only real frames move. Not receive(timeout=):
                # aiohttp restarts that timer on every internal PONG, so a zombie socket that answers
                # pings but gets no pushes (§11) would never be noticed.
                async with asyncio.timeout_at(deadline):
                    msg = await ws.receive()
            except TimeoutError:
                log.warning("dingtalk stream silent for %.0f s; reconnecting", silence)
                return "silent", saw_frames
            if msg.type in _CLOSED:
                return "closed", saw_frames
            if msg.type is aiohttp.WSMsgType.TEXT:
                saw_frames = True
                self.last_frame_at = self._monotonic()
                deadline = loop.time() + silence
                if await self._on_frame(ws, msg.data) == "disconnect":
                    return "disconnect", saw_frames

    async def _on_frame(self, ws: aiohttp.ClientWebSocketResponse, raw: str) -> str:
        try:
            frame = json.loads(raw)
            headers = frame.get("headers") or {}
            kind, topic = frame.get("type"), headers.get("topic")
            message_id = str(headers.get("messageId", ""))
        except (ValueError, AttributeError):
            log.warning("dingtalk stream: unreadable frame dropped")
            return ""
        if kind == "SYSTEM":
            # ping: echo the opaque data back; disconnect: ACK like the SDK, then reconnect.
            await self._ack(ws, message_id, frame.get("data") or "{}")
            return "disconnect" if topic == "disconnect" else ""
        if kind == "EVENT":
            await self._ack(ws, message_id, EVENT_ACK_DATA)
            if self._first_time(message_id) and (data := self._data(frame)) is not None:
                self._tasks.spawn(self._on_event(headers, data), f"dingtalk-event-{message_id}")
        elif kind == "CALLBACK" and topic in BOT_TOPICS:
            await self._ack(ws, message_id, BOT_ACK_DATA)
            if self._first_time(message_id) and (data := self._data(frame)) is not None:
                self._tasks.spawn(self._on_bot_message(data), f"dingtalk-stream-{message_id}")
        else:
            await self._ack(ws, message_id, BOT_ACK_DATA, code=404)  # topic not supported
        return ""

    @staticmethod
    def _data(frame: Mapping[str, Any]) -> dict[str, Any] | None:
        try:
            data = json.loads(frame.get("data") or "{}")
        except (TypeError, ValueError):
            data = None
        if not isinstance(data, dict):
            log.warning("dingtalk stream: frame data is not a JSON object")
            return None
        return data

    async def _ack(self, ws: aiohttp.ClientWebSocketResponse, message_id: str, data: str, code: int = 200) -> None:
        await ws.send_json({
            "code": code, "headers": {"messageId": message_id, "contentType": "application/json"},
            "message": "OK" if code == 200 else "not supported", "data": data,
        })

    def _first_time(self, message_id: str) -> bool:
        now = self._monotonic()
        while self._seen and (len(self._seen) >= SEEN_MAX or next(iter(self._seen.values())) < now - SEEN_TTL_S):
            self._seen.popitem(last=False)
        if message_id in self._seen:
            log.info("dingtalk stream: redelivered %s ignored", message_id)
            return False
        self._seen[message_id] = now
        return True
