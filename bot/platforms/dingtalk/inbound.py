"""Where verified pushes go, whatever the transport (HTTP callback or Stream frame).

Each push is counted against the monthly push quota, then handed to the core's sink in a tracked
background task so the transport can acknowledge at once. Message-id dedupe happens in the core
(across instances); contact events are deduped here by ``eventId`` since they never reach the core sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from bot.clock import Clock
from bot.errors import StorageUnavailable
from bot.kv.base import KV
from bot.message import IncomingMessage
from bot.platforms.base import InboundSink
from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.events import ContactEvent, ContactEventHandler, parse_stream_event
from bot.platforms.dingtalk.parse import QUOTA_PUSH_CODE, QuotaPushError, parse_robot_message
from bot.platforms.dingtalk.runtime import TaskSet

log = logging.getLogger("bot.platforms.dingtalk")

EVENT_DEDUPE_TTL_S = 24 * 3600


class Inbound:
    def __init__(
        self, client: DingTalkClient, clock: Clock, kv: KV, tasks: TaskSet,
        on_contact_event: ContactEventHandler | None,
    ) -> None:
        self._client = client
        self._clock = clock
        self._kv = kv
        self._tasks = tasks
        self._on_contact_event = on_contact_event
        self.sink: InboundSink | None = None

    def now(self) -> dt.datetime:
        return self._clock.now()

    def accept(self, msg: IncomingMessage) -> asyncio.Task[bool]:
        """Queue a parsed message for the sink; returns at once with the task handling it.

        The task's result is False when the core's storage was unavailable (nothing was stored): an HTTP
        callback that is still waiting answers 5xx so DingTalk redelivers the push.
        """
        return self._tasks.spawn(self._dispatch(msg), f"dingtalk-msg-{msg.message_id}")

    def spawn_event(self, event: ContactEvent) -> None:
        self._tasks.spawn(self.contact_event(event), f"dingtalk-event-{event.event_id}")

    def quota_push(self, exc: QuotaPushError) -> None:
        log.error("dingtalk push %s arrived without content: %s", exc.message_id, exc.detail)
        self._tasks.spawn(self._client.quota.exhausted("push", QUOTA_PUSH_CODE), "dingtalk-quota-alert")

    async def _dispatch(self, msg: IncomingMessage) -> bool:
        with contextlib.suppress(StorageUnavailable):  # the monthly counter is an estimate: a KV outage
            await self._client.quota.record("push")  # must not drop the message
        if self.sink is None:
            log.warning("dingtalk message %s dropped: adapter not started", msg.message_id)
            return True
        try:
            await self.sink(msg)
        except StorageUnavailable:
            log.warning("dingtalk message %s not stored: storage unavailable", msg.message_id)
            return False
        except Exception:
            log.exception("handling dingtalk message %s failed", msg.message_id)
        return True

    async def stream_bot_message(self, body: dict[str, Any]) -> None:
        try:
            msg = parse_robot_message(body, self.now())
        except QuotaPushError as exc:
            self.quota_push(exc)
            return
        except ValueError as exc:
            log.warning("malformed dingtalk stream message dropped: %s", exc)
            return
        self.accept(msg)

    async def stream_event(self, headers: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        event = parse_stream_event(headers, data)
        if event is not None:
            await self.contact_event(event)

    async def contact_event(self, event: ContactEvent) -> None:
        if event.event_id and not await self._kv.set_if_absent(
            f"dingtalk:event:{event.event_id}", "1", EVENT_DEDUPE_TTL_S
        ):
            return  # a redelivery: pushes are "relatively reliable", duplicates happen
        log.info("dingtalk contact event %s for %s", event.event_type, ",".join(event.user_ids))
        if self._on_contact_event is not None:
            try:
                await self._on_contact_event(event)
            except Exception:
                log.exception("contact event %s handler failed", event.event_id)
