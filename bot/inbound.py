"""The inbound pipeline: dedup → member lookup → conversation lock → route → one transaction.

Every state change a handler makes and every message it sends (outbox rows) commit together with the
inbound log row, whose unique (platform, message_id) is the last line of dedup across instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.context import AfterCommit, HandlerContext
from bot.db import journal
from bot.db.campaigns import prefetch_open_campaigns
from bot.db.members import find_by_platform_id, prefetch_by_platform_ids
from bot.db.outbox import enqueue, sends_staged
from bot.db.staged import StagedRow
from bot.errors import StorageUnavailable, UserInputError
from bot.forms.session import session_key
from bot.logs import inbound_log, log_event
from bot.message import IncomingMessage, OutgoingMessage, Recipient
from bot.metrics import Metrics
from bot.platforms.base import InboundResult, InlineReply
from bot.routing import Router
from bot.services import Services

MAX_TEXT_CHARS = 2000
DEDUP_TTL_SECONDS = 600.0
# PostgreSQL: group transactions in flight at once, so one group's round trips overlap another's.
GROUPS_IN_FLIGHT = 4
_MENTION_RE = re.compile(r"^\s*(@\S+\s*)+")
# Storage trouble: SQLAlchemy-wrapped driver errors, and the raw OSError (e.g. ConnectionRefusedError)
# that asyncpg raises when the database cannot be reached at all (SQLAlchemy does not wrap those).
STORAGE_ERRORS: tuple[type[BaseException], ...] = (StorageUnavailable, DBAPIError, OSError)

UNKNOWN_SENDER = "您好，未在党员名册中找到您的信息，暂时无法登记。请联系支部书记把您加入名册后再试。"
EMPTY_TEXT = "消息是空的。请直接回复内容，例如：党费 50；发送“帮助”查看可用命令。"
TOO_LONG = "消息太长了（超过2000字），请精简后再发送。"
INTERNAL_ERROR = "抱歉，处理您的消息时出了点问题，已记录。请稍后再试，或联系支部书记。"
NOT_UNDERSTOOD = "没有看懂这条消息。可以回复例如：党费 50、到、请假 出差；发送“帮助”查看可用命令。"


def unstorable(exc: DBAPIError) -> bool:
    """A data exception (SQLSTATE class 22: value too long, bad encoding, …): the input, not the database."""
    return isinstance(exc, DataError) or str(getattr(exc.orig, "sqlstate", "") or "").startswith("22")


def without_nul(msg: IncomingMessage) -> IncomingMessage:
    """PostgreSQL text cannot hold NUL (0x00): drop it, or the insert fails (5xx) on every redelivery."""
    if "\x00" not in f"{msg.conversation_id}{msg.sender_id}{msg.text}{msg.message_id}{msg.sender_name}":
        return msg  # every message: one scan of one string
    fields = {k: getattr(msg, k) for k in ("conversation_id", "sender_id", "text", "message_id", "sender_name")}
    return dataclasses.replace(msg, **{k: v.replace("\x00", "") for k, v in fields.items()})


def strip_mention(text: str) -> str:
    return _MENTION_RE.sub("", text, count=1).strip()


def text_of(msg: IncomingMessage) -> str:
    """What the handlers read: the text without a leading @mention in groups, trimmed."""
    return strip_mention(msg.text) if msg.is_group else msg.text.strip()


class InboundPipeline:
    def __init__(
        self,
        services: Services,
        router: Router,
        on_commit: Callable[[], None],
        settle_inline: Callable[[StagedRow, bool], None] | None = None,
    ) -> None:
        self.services = services
        self.router = router
        self._on_commit = on_commit
        self._settle_inline = settle_inline
        parallel = 1 if services.settings.is_sqlite else GROUPS_IN_FLIGHT
        self._group = GroupCommit(services.sessions, self._handle_group, services.metrics, parallel, on_commit)

    async def __call__(self, msg: IncomingMessage) -> InboundResult:
        msg = without_nul(msg)
        if msg.inline_reply and self._settle_inline is None:
            msg = dataclasses.replace(msg, inline_reply=False)  # nobody could settle a held reply
        metrics = self.services.metrics
        metrics.inc("dangjian_messages_in_total", platform=msg.platform.value)
        if msg.is_group and not msg.is_to_me:
            return InboundResult()
        claim_key = f"in:{msg.platform.value}:{msg.message_id}"
        # The lock serialises one member's replies in one chat, for the dialogue state they share.
        # Commands (/stats, 未交, …) never touch that state, so they skip its KV commands.
        lock = None
        if self.router.find_command(text_of(msg)) is None:
            lock = self._lock(f"conv:{msg.platform.value}:{msg.conversation_id}:{msg.sender_id}")
            # Claim and lock in the same KV round trip (one pipeline); a duplicate just gives the lock back.
            claimed, _ = await asyncio.gather(self._claim(claim_key), lock.__aenter__())
        else:
            claimed = await self._claim(claim_key)
        try:
            if not claimed:
                metrics.inc("dangjian_messages_duplicate_total", platform=msg.platform.value)
                log_event(inbound_log, "duplicate", platform=msg.platform.value, message_id=msg.message_id)
                return InboundResult(duplicate=True)
            try:
                return await self._handle(msg)
            except STORAGE_ERRORS as exc:
                await self._release(claim_key)
                log_event(inbound_log, "storage_unavailable", logging.ERROR, message_id=msg.message_id, error=str(exc))
                raise StorageUnavailable(str(exc)) from exc
        finally:
            if lock is not None:
                lock.release_soon()

    async def _claim(self, key: str) -> bool:
        try:
            return await self.services.kv.set_if_absent(key, "1", DEDUP_TTL_SECONDS)
        except StorageUnavailable:
            return True  # KV down: the database's unique message id still dedups

    async def _release(self, key: str) -> None:
        with contextlib.suppress(StorageUnavailable):
            await self.services.kv.delete(key)

    def _lock(self, key: str) -> _TolerantLock:
        return _TolerantLock(self.services, key)

    async def _handle(self, msg: IncomingMessage) -> InboundResult:
        grouped = await self._group.submit(msg)
        if grouped is not None:
            return grouped
        # Alone: the first message of a quiet moment, or one that failed inside a group commit.
        try:
            try:
                return await self._handle_once(msg)
            except IntegrityError:
                if await self._already_logged(msg):
                    # A second instance committed the same message id first.
                    return InboundResult(duplicate=True)
                # Another message won a race on some other unique key (e.g. the same member answering in
                # two chats at once): handle this one again, now on top of that committed write.
                return await self._handle_once(msg)
        except IntegrityError:
            if await self._already_logged(msg):
                return InboundResult(duplicate=True)
            log_event(inbound_log, "handler_conflict", logging.ERROR, message_id=msg.message_id, exc_info=True)
            return await self._answer_plain(msg, INTERNAL_ERROR)
        except DBAPIError as exc:
            if not unstorable(exc):
                raise
            # The message itself cannot be stored (e.g. an id longer than its column): retrying cannot help,
            # so it is dropped and acknowledged rather than answered with a 5xx on every redelivery.
            log_event(inbound_log, "unstorable", logging.ERROR, message_id=msg.message_id[:200], exc_info=True)
            return InboundResult()
        except STORAGE_ERRORS:
            raise  # storage trouble: the caller answers 5xx so the platform redelivers
        except Exception:
            log_event(inbound_log, "handler_error", logging.ERROR, message_id=msg.message_id, exc_info=True)
            try:
                return await self._answer_plain(msg, INTERNAL_ERROR)
            except Exception as exc:  # the polite answer needs the database too: it is unreachable
                raise StorageUnavailable(f"answering after a handler error failed: {exc!r}") from exc

    async def _already_logged(self, msg: IncomingMessage) -> bool:
        async with self.services.sessions() as session:
            return await journal.seen_inbound(session, msg)

    async def _handle_once(self, msg: IncomingMessage) -> InboundResult:
        async with self.services.sessions() as session, session.begin():
            (handled,) = await self._handle_group(session, [msg])
            sends = sends_staged(session)
        if sends:
            self._on_commit()
        await run_after_commit(handled.after_commit)
        return handled.result

    async def _handle_group(self, session: AsyncSession, msgs: list[IncomingMessage]) -> list[Handled]:
        """Messages inside one open transaction (a group commit's, or one message's own).

        A group's reads and its inbound log go first, set-based: its senders in one query, their inbound
        rows in one statement, the open campaigns of those who answer a form in one more, their dialogue
        states in one KV ``MGET``. Each handler then finds its member, campaigns and dialogue state there
        instead of asking again. One message alone keeps the plain per-message queries."""
        now = self.services.now()  # one "now" for the group: the prefetched campaigns are open at it
        if len(msgs) == 1:
            return [await self._handle_in(session, msgs[0], now, logged=False)]
        # The dialogue states of all but commands, read from the KV while the database answers the rest.
        dialogues_read = asyncio.ensure_future(
            self._read_dialogues([m for m in msgs if self.router.find_command(text_of(m)) is None])
        )
        try:
            return await self._handle_many(session, msgs, now, dialogues_read)
        finally:
            if not dialogues_read.done():
                dialogues_read.cancel()
            elif not dialogues_read.cancelled():
                dialogues_read.exception()  # retrieved: a failed group must not also log "never retrieved"

    async def _handle_many(
        self,
        session: AsyncSession,
        msgs: list[IncomingMessage],
        now: dt.datetime,
        dialogues_read: asyncio.Future[dict[str, str | None]],
    ) -> list[Handled]:
        for platform in {m.platform for m in msgs}:
            await prefetch_by_platform_ids(session, platform, [m.sender_id for m in msgs if m.platform is platform])
        members = [await find_by_platform_id(session, m.platform, m.sender_id) for m in msgs]
        # Written first: the unique (platform, message_id) is the dedup check, so a replay that got past
        # the KV claim fails here (IntegrityError → the group is void, each message goes alone) before
        # any handler work.
        await journal.log_inbound_many(session, [(m, member.id if member else None) for m, member in zip(msgs, members, strict=True)])
        answering = [
            (msg, member)
            for msg, member in zip(msgs, members, strict=True)
            if member is not None and self.router.find_command(text_of(msg)) is None
        ]
        await prefetch_open_campaigns(session, list({m.id: m for _, m in answering}.values()), now)
        dialogues = await dialogues_read
        handled = []
        for msg in msgs:
            key = session_key(msg)
            read = {key: dialogues[key]} if key in dialogues else {}
            handled.append(await self._handle_in(session, msg, now, logged=True, kv_read=read))
        return handled

    async def _read_dialogues(self, msgs: list[IncomingMessage]) -> dict[str, str | None]:
        """The dialogue states of a group's answers in one KV round trip, not one each inside the transaction."""
        keys = list({session_key(msg) for msg in msgs})
        try:
            return dict(zip(keys, await self.services.kv.get_many(keys), strict=True))
        except StorageUnavailable:
            return {}  # each handler tries its own read (and goes on without dialogue state if that fails)

    async def _handle_in(
        self, session: AsyncSession, msg: IncomingMessage, now: dt.datetime, logged: bool,
        kv_read: dict[str, str | None] | None = None,
    ) -> Handled:
        """One message inside an open transaction; ``logged``: its inbound row is written already."""
        services = self.services
        member = await find_by_platform_id(session, msg.platform, msg.sender_id)
        if not logged:
            # Written first: the unique (platform, message_id) is the dedup check, so a replay that got
            # past the KV claim fails here (IntegrityError → _handle) before any handler work.
            await journal.log_inbound(session, msg, member.id if member else None)
        ctx = HandlerContext(
            msg=msg,
            member=member,
            session=session,
            services=services,
            router=self.router,
            now=now,
            text=text_of(msg),
            kv_read=kv_read if kv_read is not None else {},
        )
        await self._route(ctx)
        log_event(
            inbound_log,
            "handled",
            platform=msg.platform.value,
            message_id=msg.message_id,
            member_id=member.id if member else None,
            replies=len(ctx.replies),
        )
        inline = None
        if ctx.inline is not None and self._settle_inline is not None:
            inline = InlineReply(ctx.inline[0], functools.partial(self._settle_inline, ctx.inline[1]))
        return Handled(InboundResult(replies=tuple(ctx.replies), inline=inline), ctx.after_commit)

    async def _route(self, ctx: HandlerContext) -> None:
        if not ctx.text:
            ctx.reply(EMPTY_TEXT)
            return
        if len(ctx.text) > MAX_TEXT_CHARS:
            ctx.reply(TOO_LONG)
            return
        if ctx.member is None:
            ctx.reply(UNKNOWN_SENDER)
            return
        try:
            if not await self.router.dispatch(ctx):
                ctx.reply(NOT_UNDERSTOOD)
        except UserInputError as exc:
            ctx.reply(exc.user_message)

    async def _answer_plain(self, msg: IncomingMessage, text: str) -> InboundResult:
        """After a handler error: log the message and answer politely in a fresh transaction."""
        services = self.services
        recipient = (
            Recipient(msg.platform, conversation_id=msg.conversation_id)
            if msg.is_group
            else Recipient(msg.platform, user_id=msg.sender_id)
        )
        out = OutgoingMessage(recipient=recipient, text=text, reply_handle=msg.reply_handle)
        async with services.sessions() as session, session.begin():
            if await journal.seen_inbound(session, msg):
                return InboundResult(duplicate=True)
            await journal.log_inbound(session, msg, None)
            enqueue(session, out, services.now(), reason="error")
        self._on_commit()
        return InboundResult(replies=(out,))


@dataclasses.dataclass(frozen=True, slots=True)
class Handled:
    """A message handled inside a transaction, and what may happen only once that transaction commits."""

    result: InboundResult
    after_commit: list[AfterCommit]


async def run_after_commit(actions: list[AfterCommit]) -> None:
    """Post-commit effects (dialogue state in the KV): best effort, the answer is stored already."""
    for action in actions:
        try:
            await action()
        except Exception:
            log_event(inbound_log, "after_commit_failed", logging.WARNING, exc_info=True)


HandleGroup = Callable[[AsyncSession, list[IncomingMessage]], Awaitable[list[Handled]]]


class GroupCommit:
    """Messages that arrive while a transaction is running are handled together in the next one.

    One transaction (one commit, one connection checkout, one SQLite write lock) per group instead of
    per message. No savepoints (two more round trips and most of the ORM's per-message bookkeeping):
    if any message of the group fails (unique-key race, handler error, data error, storage trouble) the
    whole transaction is rolled back and every message of it is answered ``None``, to be handled alone
    by the caller's full error path. Handlers write nothing outside the transaction before it commits
    (dialogue state goes to the KV only after the commit, ``HandlerContext.after_commit``), so handling
    a message again after a void group starts from the same state. Under light load a group is one
    message.

    Each message still holds its conversation lock (taken by the pipeline before submitting), so two
    messages of one conversation are never in flight at once: the second waits for the first's commit.
    """

    MAX_GROUP = 64

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        handle: HandleGroup,
        metrics: Metrics,
        parallel: int = 1,
        on_sends: Callable[[], None] | None = None,
    ) -> None:
        self._on_sends = on_sends  # after a commit that queued messages to send (the dispatcher's wake-up)
        self._sessions = sessions
        self._handle = handle
        self._metrics = metrics
        self._parallel = parallel  # transactions in flight at once (SQLite: 1, it has one writer)
        self._queue: list[tuple[IncomingMessage, asyncio.Future[InboundResult | None]]] = []
        self._drainers: set[asyncio.Task[None]] = set()

    async def submit(self, msg: IncomingMessage) -> InboundResult | None:
        future: asyncio.Future[InboundResult | None] = asyncio.get_running_loop().create_future()
        self._queue.append((msg, future))
        # A drainer that has finished may still be in the set (its done-callback runs on a later loop
        # turn): it no longer drains, so it does not count.
        if sum(not d.done() for d in self._drainers) < self._parallel:
            drainer = asyncio.create_task(self._drain(), name="inbound-group-commit")
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                group, self._queue = self._queue[: self.MAX_GROUP], self._queue[self.MAX_GROUP :]
                await self._run([(m, f) for m, f in group if not f.done()])
        except BaseException:
            for _, future in self._queue:  # cancelled (shutdown): the waiting callers handle theirs alone
                if not future.done():
                    future.set_result(None)
            self._queue = []
            raise

    async def _run(self, group: list[tuple[IncomingMessage, asyncio.Future[InboundResult | None]]]) -> None:
        handled: list[Handled] = []
        try:
            async with self._sessions() as session, session.begin():
                handled = await self._handle(session, [msg for msg, _ in group])
                sends = sends_staged(session)
        except BaseException as exc:
            handled = []  # nothing of this group was stored: each one goes alone
            if not isinstance(exc, Exception):
                raise
        else:
            self._metrics.inc("dangjian_inbound_commits_total")
            self._metrics.inc("dangjian_inbound_committed_messages_total", len(handled))
            if sends and self._on_sends is not None:
                self._on_sends()
            for h in handled:
                await run_after_commit(h.after_commit)
        finally:
            results = [h.result for h in handled] if handled else [None] * len(group)
            self._metrics.inc("dangjian_inbound_alone_total", sum(r is None for r in results))
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)


class _TolerantLock:
    """The per-conversation lock; when the KV is down, proceed without it (DB constraints still hold)."""

    def __init__(self, services: Services, key: str) -> None:
        self._services = services
        self._key = key
        self._cm: AbstractAsyncContextManager[None] | None = None

    async def __aenter__(self) -> None:
        cm = self._services.kv.lock(self._key, 30.0)
        try:
            await cm.__aenter__()
        except StorageUnavailable:
            return
        self._cm = cm

    async def __aexit__(self, *exc: object) -> None:
        if self._cm is not None:
            with contextlib.suppress(StorageUnavailable):
                await self._cm.__aexit__(None, None, None)

    def release_soon(self) -> None:
        """Release in the background: the answer need not wait for the KV's reply. Until it lands, a next
        message of the same conversation waits for the lock (milliseconds); if the bot stops first, the
        lock's TTL frees it."""
        if self._cm is not None:
            task = asyncio.get_running_loop().create_task(self.__aexit__(None, None, None), name="conversation-unlock")
            _RELEASING.add(task)
            task.add_done_callback(_RELEASING.discard)


_RELEASING: set[asyncio.Task[None]] = set()  # background lock releases (kept referenced until done)
