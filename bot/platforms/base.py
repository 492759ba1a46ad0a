"""What every platform adapter offers the core, and what the core offers back.

Inbound: the adapter verifies and parses a callback into an ``IncomingMessage`` and hands it to the
``InboundSink`` (dedup, routing, storage happen in the core). Outbound: the outbox dispatcher hands a
batch of ``OutgoingMessage`` to ``Messenger.deliver``; the adapter chooses the fewest platform calls
(e.g. one batch call for the same text to 20 users) and reports one ``Delivery`` per message.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from bot.message import IncomingMessage, OutgoingMessage, Platform


class DeliveryStatus(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient: try again after ``retry_after`` seconds
    FAILED = "failed"  # permanent: do not retry (bad user id, quota exhausted, ...)


@dataclass(frozen=True, slots=True)
class Delivery:
    status: DeliveryStatus
    detail: str = ""
    retry_after: float | None = None
    platform_calls: int = 0  # how many API calls this message shared in (for metrics)


@dataclass(frozen=True, slots=True)
class InboundResult:
    """What the core answers to an inbound message.

    ``replies`` are the bot's direct answers (already stored in the outbox); platforms that can answer
    synchronously (the local chat, WeCom passive replies) may use them, others ignore them.
    ``duplicate`` is True when the message id had been seen before.
    """

    replies: Sequence[OutgoingMessage] = ()
    duplicate: bool = False
    inline: InlineReply | None = None  # only for messages that arrived with ``inline_reply``


@dataclass(frozen=True, slots=True)
class InlineReply:
    """A reply held for the transport's acknowledgement (one of ``replies``), stored in the outbox as held.

    The platform calls ``settle(True)`` once the acknowledgement carrying it has been written, or
    ``settle(False)`` when it cannot carry it (too long, the platform stopped waiting, the write failed):
    then the outbox sends it the usual way at once. Never settled (a crash), the outbox sends it after the
    hold, ``bot.db.outbox.INLINE_HOLD``.
    """

    message: OutgoingMessage
    settle: Callable[[bool], None]


InboundSink = Callable[[IncomingMessage], Awaitable[InboundResult]]
AdminAlert = Callable[[str, str], Awaitable[None]]  # (dedup key, Chinese text) -> tell admins once


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    user_id: str
    name: str
    mobile: str = ""
    departments: tuple[str, ...] = ()  # department names, for name matching within department
    active: bool = True


@dataclass(frozen=True, slots=True)
class PlatformHealth:
    ok: bool
    detail: dict[str, object] = field(default_factory=dict)


class Messenger(Protocol):
    platform: Platform

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        """Send messages (same order in, same order out), using as few platform calls as possible."""
        ...


class PlatformAdapter(Messenger, Protocol):
    def routes(self) -> list[web.RouteDef]:
        """HTTP routes this platform serves (callbacks), mounted by the web app."""
        ...

    async def start(self, sink: InboundSink) -> None:
        """Begin receiving (e.g. open a Stream connection); callbacks go to ``sink``."""
        ...

    async def stop(self) -> None: ...

    async def health(self) -> PlatformHealth: ...

    async def directory(self) -> list[DirectoryUser]:
        """Everyone in the platform's directory visible to the app (for `members sync`)."""
        ...
