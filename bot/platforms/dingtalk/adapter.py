"""``DingTalkAdapter``: the DingTalk app robot as a ``PlatformAdapter`` for the core.

Built once in the composition root::

    adapter = DingTalkAdapter(
        settings.dingtalk,                              # DingTalkSettings
        [GroupWebhook.model_validate(g) for g in dingtalk_groups],
        kv, clock,
        aiohttp.ClientSession,                          # a factory (we own and close it) or a shared session
        admin_alert,                                    # (dedup key, Chinese text) -> None
        on_contact_event=members_service.on_contact_event,  # optional
    )
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence

from aiohttp import web

from bot.clock import Clock
from bot.kv.base import KV
from bot.message import OutgoingMessage, Platform
from bot.platforms.base import AdminAlert, Delivery, DirectoryUser, InboundSink, PlatformHealth
from bot.platforms.dingtalk.callbacks import CallbackRoutes
from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.delivery import Deliverer
from bot.platforms.dingtalk.directory import fetch_directory
from bot.platforms.dingtalk.events import ContactEventHandler, EventCrypto
from bot.platforms.dingtalk.inbound import Inbound
from bot.platforms.dingtalk.limits import SleepFn
from bot.platforms.dingtalk.quota import usage_line
from bot.platforms.dingtalk.runtime import SessionHolder, SessionSource, TaskSet
from bot.platforms.dingtalk.settings import DingTalkSettings, GroupWebhook, missing_for_mode
from bot.platforms.dingtalk.stream import StreamClient


class DingTalkAdapter:
    platform = Platform.DINGTALK

    def __init__(
        self,
        settings: DingTalkSettings,
        groups: Sequence[GroupWebhook],
        kv: KV,
        clock: Clock,
        session: SessionSource,
        admin_alert: AdminAlert,
        *,
        on_contact_event: ContactEventHandler | None = None,
        sleep: SleepFn = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        http_timeout_s: float = 10.0,
        processes: int = 1,
        stream_consumer: bool = True,
    ) -> None:
        self.settings = settings
        # One Stream consumer per app: whether DingTalk spreads pushes over several connections or a second
        # connection kicks the first is UNCONFIRMED, so of `run --workers N` only worker 0 connects.
        self.stream_consumer = stream_consumer
        self._sessions = SessionHolder(session)
        self._tasks = TaskSet()
        self._sleep = sleep
        self._rng = rng
        self.client = DingTalkClient(settings, self._sessions, kv, clock, admin_alert, sleep=sleep,
                                     timeout_s=http_timeout_s, processes=processes)
        self._deliverer = Deliverer(self.client, groups)
        self._inbound = Inbound(self.client, clock, kv, self._tasks, on_contact_event)
        crypto = None
        if settings.event_token and settings.event_aes_key:
            # Console-configured subscriptions encrypt with the AppKey as owner key (fact sheet §8).
            crypto = EventCrypto(settings.event_token, settings.event_aes_key, settings.app_key)
        self._callbacks = CallbackRoutes(settings, self._inbound, crypto)
        self.stream: StreamClient | None = None

    def routes(self) -> list[web.RouteDef]:
        return self._callbacks.routes()

    async def start(self, sink: InboundSink) -> None:
        self._inbound.sink = sink
        if self.settings.mode == "stream" and self.stream_consumer and self.stream is None:
            self.stream = StreamClient(
                self.client, self._sessions, self._tasks, on_bot_message=self._inbound.stream_bot_message,
                on_event=self._inbound.stream_event, sleep=self._sleep, rng=self._rng,
            )
            self.stream.start()

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None
        await self._tasks.drain()
        await self.client.quota.flush()  # the last coalesced usage counts
        await self._sessions.close()

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        return await self._deliverer.deliver(messages)

    async def directory(self) -> list[DirectoryUser]:
        return await fetch_directory(self.client)

    async def quota_usage(self) -> dict[str, object]:
        """Monthly usage estimate: api_used, api_quota, push_used, push_quota, month (YYYY-MM)."""
        return await self.client.quota.usage()

    async def quota_line(self) -> str:
        """``钉钉本月用量：API 120/5000，推送 30/3000`` for the admins' /stats."""
        return usage_line(await self.client.quota.usage())

    async def budget_low(self) -> bool:
        """True once this month's API or push usage reaches 80 %: callers should prefer one group digest
        over many 1:1 messages (the reminder path does, see ``schedules.actions.remind``)."""
        return await self.client.quota.low()

    async def health(self) -> PlatformHealth:
        missing = missing_for_mode(self.settings)
        detail: dict[str, object] = {"mode": self.settings.mode, "missing": missing,
                                     "background_tasks": len(self._tasks)}
        ok = not missing
        if self.settings.mode == "stream" and self.stream_consumer:
            connected = self.stream is not None and self.stream.connected
            detail["stream_connected"] = connected
            detail["stream_connections"] = self.stream.connections if self.stream else 0
            ok = ok and connected
        try:
            detail["quota"] = await self.client.quota.usage()
        except Exception as exc:  # noqa: BLE001 - health must report, not raise
            detail["quota_error"] = str(exc)
        return PlatformHealth(ok=ok, detail=detail)
