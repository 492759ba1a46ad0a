"""``WeComAdapter``: the WeCom ``PlatformAdapter`` (callbacks in, message/send + robots out).

Built in the composition root::

    adapter = WeComAdapter(settings.wecom, groups_from_config(config_groups), kv, clock, http_session, admin_alert)
    app.add_routes(adapter.routes())
    await adapter.start(sink)

The adapter owns no sessions or stores: the caller creates and closes them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

import aiohttp
from aiohttp import web

from bot.clock import Clock
from bot.errors import ConfigError, StorageUnavailable
from bot.kv.base import KV
from bot.message import IncomingMessage, OutgoingMessage, Platform, Recipient
from bot.platforms.base import (
    AdminAlert,
    Delivery,
    DeliveryStatus,
    DirectoryUser,
    InboundSink,
    PlatformHealth,
)
from bot.platforms.wecom import appmsg
from bot.platforms.wecom.callbacks import CallbackEndpoint, parse_app_plaintext, parse_robot_plaintext
from bot.platforms.wecom.client import ErrorKind, Sleep, WeComClient
from bot.platforms.wecom.crypto import WeComCrypto
from bot.platforms.wecom.delivery import Deliverer
from bot.platforms.wecom.pacing import MemberPacer, WebhookLimiter
from bot.platforms.wecom.settings import GroupWebhook, WeComSettings, missing_config

log = logging.getLogger("bot.platforms.wecom")
STOP_GRACE_SECONDS = 5.0
NOT_SAVED = "抱歉，系统暂时无法处理您的消息，这条消息没有登记。请稍后重新发送。"


class WeComAdapter:
    platform = Platform.WECOM
    max_batch = 1000  # outbox rows per dispatcher round: message/send takes 1,000 users per call

    def __init__(
        self,
        settings: WeComSettings,
        groups: Sequence[GroupWebhook],
        kv: KV,
        clock: Clock,
        session: aiohttp.ClientSession,
        admin_alert: AdminAlert | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._kv = kv
        self._sink: InboundSink | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.client = WeComClient(settings, kv, session, admin_alert, sleep=sleep, rng=rng)
        pacer = MemberPacer(
            kv, clock, settings.agent_id, settings.member_per_minute, settings.member_per_hour
        )
        limiter = WebhookLimiter(clock, sleep, settings.webhook_per_minute)
        by_id = {g.conversation_id: g for g in groups}
        self._has_webhooks = any(g.webhook_url for g in groups)
        self._deliverer = Deliverer(self.client, kv, clock, by_id, pacer, limiter)
        app_crypto = (
            WeComCrypto(settings.token, settings.encoding_aes_key, settings.corp_id)
            if settings.callback_configured
            else None
        )
        # The smart robot signs with its own Token/AESKey and an empty receive id.
        robot_crypto = (
            WeComCrypto(settings.robot_token, settings.robot_encoding_aes_key, "")
            if settings.robot_configured
            else None
        )
        limit = settings.callback_body_limit
        self.app_endpoint = CallbackEndpoint(
            "app", app_crypto, parse_app_plaintext, self._dispatch, clock, limit
        )
        self.robot_endpoint = CallbackEndpoint(
            "robot", robot_crypto, parse_robot_plaintext, self._dispatch, clock, limit
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/wecom/callback", self.app_endpoint.verify_url),
            web.post("/wecom/callback", self.app_endpoint.receive),
            web.get("/wecom/robot", self.robot_endpoint.verify_url),  # robot URL verification
            web.post("/wecom/robot", self.robot_endpoint.receive),
        ]

    async def start(self, sink: InboundSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        return await self._deliverer.deliver(messages)

    async def health(self) -> PlatformHealth:
        missing = missing_config(self.settings)
        last = self.client.last_error
        detail: dict[str, object] = {
            "enabled": self.settings.enabled,
            "missing": missing[:-1] if missing else [],  # the last line is a reminder, not a gap
            "token_cached": await self.client.tokens.cached() if self.settings.app_configured else False,
            "robot_callback": self.settings.robot_configured,
            "background_tasks": len(self._tasks),
            "last_error": f"{last.code}: {last.message}" if last else "",
        }
        fatal = last is not None and last.kind in (ErrorKind.IP_DENIED, ErrorKind.CONFIG)
        can_send = self.settings.app_configured or self.settings.robot_configured or self._has_webhooks
        return PlatformHealth(ok=can_send and not fatal, detail=detail)

    async def directory(self) -> list[DirectoryUser]:
        if not self.settings.app_configured:
            raise ConfigError("[wecom] corp_id, agent_id and secret are needed to read the directory")
        return await appmsg.fetch_directory(self.client)

    async def drain(self) -> None:
        """Wait for the in-flight inbound hand-offs (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*set(self._tasks), return_exceptions=True)

    async def _dispatch(self, msg: IncomingMessage) -> bool:
        """Hand the message to the core and wait up to ``ack_wait_seconds`` (WeCom waits 5 s). Storage trouble
        within that time raises ``StorageUnavailable`` so the route answers 503 and WeCom redelivers; slower
        handling goes on in the background after the 200."""
        sink = self._sink
        if sink is None:
            return False
        acked = asyncio.Event()
        task = asyncio.create_task(self._hand_off(sink, msg, acked), name=f"wecom-inbound-{msg.message_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        done, _ = await asyncio.wait({task}, timeout=self.settings.ack_wait_seconds)
        if task in done and isinstance(task.exception(), StorageUnavailable):
            raise StorageUnavailable(str(task.exception()))
        acked.set()
        return True

    async def _hand_off(self, sink: InboundSink, msg: IncomingMessage, acked: asyncio.Event) -> None:
        try:
            await sink(msg)
        except StorageUnavailable:
            if not acked.is_set():
                raise  # still inside the callback: it answers 503 and WeCom redelivers
            log.exception("inbound WeCom message %s failed in the core after the ack", msg.message_id)
            await self._tell_not_saved(msg)
        except Exception:  # the callback was already acknowledged; log, never crash the loop
            log.exception("inbound WeCom message %s failed in the core", msg.message_id)
            await self._tell_not_saved(msg)

    async def _tell_not_saved(self, msg: IncomingMessage) -> None:
        """The core could not take the message (e.g. storage down) and WeCom will not redeliver it, since
        it was acknowledged: ask the member to resend, straight through ``deliver`` (no outbox)."""
        recipient = (
            Recipient(Platform.WECOM, conversation_id=msg.conversation_id)
            if msg.is_group
            else Recipient(Platform.WECOM, user_id=msg.sender_id)
        )
        mention = (msg.sender_id,) if msg.is_group else ()
        notice = OutgoingMessage(
            recipient, NOT_SAVED, mention_user_ids=mention, reply_handle=msg.reply_handle
        )
        try:
            [outcome] = await self._deliverer.deliver([notice])
        except Exception:  # the KV may be down as well
            log.exception("could not tell %s that message %s was not saved", msg.sender_id, msg.message_id)
            return
        if outcome.status is not DeliveryStatus.SENT:
            log.warning("not-saved notice for %s: %s", msg.message_id, outcome.detail)
