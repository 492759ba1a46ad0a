"""Where verified pushes go, whatever the transport (HTTP callback or Stream frame).

Each push is counted against the monthly push quota, then handed to the core's sink in a tracked
background task so the transport can acknowledge at once. Message-id dedupe happens in the core
(across instances); contact events are deduped here by ``eventId`` since they never reach the core sink.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.clock import Clock
from bot.errors import StorageUnavailable
from bot.kv.base import KV
from bot.message import IncomingMessage
from bot.platforms.base import InboundResult, InboundSink
from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.events import ContactEvent, ContactEventHandler, parse_stream_event
from bot.platforms.dingtalk.parse import QUOTA_PUSH_CODE, QuotaPushError, parse_robot_message
from bot.platforms.dingtalk.runtime import TaskSet

log = logging.getLogger("bot.platforms.dingtalk")

EVENT_DEDUPE_TTL_S = 24 * 3600
STORAGE_RETRIES = 6  # after an ack: 0.5 + 1 + 2 + 4 + 8 + 16 s ≈ 30 s of storage trouble is bridged
STORAGE_RETRY_BASE_S = 0.5
STORAGE_RETRY_MAX_S = 16.0


@dataclass
class Handoff:
    """Whether the transport has already acknowledged the push (then only we can still store it)."""

    acked: bool = False


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

    def accept(self, msg: IncomingMessage, handoff: Handoff | None = None) -> asyncio.Task[InboundResult | None]:
        """Queue a parsed message for the sink; returns at once with the task handling it.

        The task's result is the core's answer, or None when the message was not stored. While
        ``handoff.acked`` is False (an HTTP callback still waiting) that is None when the core's storage was
        unavailable, and the callback answers 5xx so DingTalk redelivers the push. Once
        the push has been acknowledged (Stream frames always are; a callback that stopped waiting), storage
        failures are retried here with backoff instead: nobody would redeliver it.
        """
        handoff = handoff or Handoff(acked=True)
        return self._tasks.spawn(self._dispatch(msg, handoff), f"dingtalk-msg-{msg.message_id}")

    def spawn_event(self, event: ContactEvent) -> None:
        self._tasks.spawn(self.contact_event(event), f"dingtalk-event-{event.event_id}")

    def quota_push(self, exc: QuotaPushError) -> None:
        log.error("dingtalk push %s arrived without content: %s", exc.message_id, exc.detail)
        self._tasks.spawn(self._client.quota.exhausted("push", QUOTA_PUSH_CODE), "dingtalk-quota-alert")

    async def _dispatch(self, msg: IncomingMessage, handoff: Handoff) -> InboundResult | None:
        self._client.quota.record_later("push")  # an estimate, never in the message's way
        if self.sink is None:
            log.warning("dingtalk message %s dropped: adapter not started", msg.message_id)
            return InboundResult()
        for attempt in range(STORAGE_RETRIES + 1):
            try:
                return await self.sink(msg)
            except StorageUnavailable:
                if not handoff.acked:
                    log.warning("dingtalk message %s not stored: storage unavailable", msg.message_id)
                    return None
                if attempt == STORAGE_RETRIES:
                    log.error("dingtalk message %s LOST: storage unavailable after %d tries", msg.message_id,
                              attempt + 1)
                    return None
                await asyncio.sleep(min(STORAGE_RETRY_MAX_S, STORAGE_RETRY_BASE_S * 2**attempt))
                continue
            except Exception:
                log.exception("handling dingtalk message %s failed", msg.message_id)
                return InboundResult()
        return None

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
