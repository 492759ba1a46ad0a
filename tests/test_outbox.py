"""The outbox dispatcher with a scripted fake platform (the boundary), and handler failures.

Retries back off on the FakeClock, permanent failures are marked ``failed``, a crash mid-delivery is
recovered after the lease, and an exception inside a handler rolls back its writes and answers politely."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.clock import FakeClock
from bot.context import HandlerContext
from bot.db.tables import AuditEntry, InboundMessage, OutboxMessage, Response
from bot.inbound import INTERNAL_ERROR
from bot.message import OutgoingMessage, Platform
from bot.platforms.base import Delivery, DeliveryStatus
from tests.conftest import Running, start_bot, stop_bot

ZHANG_SAN = "13800000003"
DM = f"dm:{ZHANG_SAN}"


class Crash(BaseException):
    """The process dying mid-delivery (not an Exception: nothing in the bot may swallow it)."""


Script = Callable[[OutgoingMessage, int], Delivery]


class FakeMessenger:
    """A platform whose answers the test scripts; records every delivery attempt."""

    platform = Platform.LOCAL

    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[list[str]] = []
        self.attempts: dict[str, int] = {}
        self.raise_next: BaseException | None = None

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        self.calls.append([m.text for m in messages])
        if self.raise_next is not None:
            exc, self.raise_next = self.raise_next, None
            raise exc
        out = []
        for m in messages:
            self.attempts[m.text] = self.attempts.get(m.text, 0) + 1
            out.append(self.script(m, self.attempts[m.text]))
        return out


def sent(_: OutgoingMessage, __: int) -> Delivery:
    return Delivery(DeliveryStatus.SENT)


async def rows(bot: Running) -> list[OutboxMessage]:
    async with bot.app.sessions() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars().all())


async def new_rows(bot: Running, after_id: int) -> list[OutboxMessage]:
    return [r for r in await rows(bot) if r.id > after_id]


async def last_id(bot: Running) -> int:
    existing = await rows(bot)
    return existing[-1].id if existing else 0


async def post(bot: Running, conversation: str, sender: str, text: str) -> dict[str, Any]:
    """POST without delivering (the test drives the dispatcher itself)."""
    resp = await bot.client.post(
        "/api/local/messages", json={"conversation_id": conversation, "sender_id": sender, "text": text}
    )
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


def install(bot: Running, script: Script) -> FakeMessenger:
    fake = FakeMessenger(script)
    bot.app.dispatcher.messengers[Platform.LOCAL] = fake
    return fake


@pytest.fixture
async def quick_bot(settings_factory: Any, clock: FakeClock) -> Any:
    """A bot with a small retry budget: 2 s base backoff, 3 attempts."""
    settings = await settings_factory(
        **{"outbox.max_attempts": 3, "outbox.base_backoff_seconds": 2.0, "outbox.max_backoff_seconds": 60.0}
    )
    running = await start_bot(settings, clock)
    try:
        yield running
    finally:
        await stop_bot(running)


async def test_transient_failure_is_retried_with_growing_backoff(
    quick_bot: Running, clock: FakeClock
) -> None:
    bot = quick_bot
    fake = install(
        bot,
        lambda m, n: Delivery(DeliveryStatus.RETRY, "HTTP 502") if n < 3 else Delivery(DeliveryStatus.SENT),
    )
    start = await last_id(bot)
    await post(bot, DM, ZHANG_SAN, "帮助")

    assert await bot.app.flush_outbox() == 1
    (row,) = await new_rows(bot, start)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 502")
    first_delay = (row.next_attempt_at - clock.now()).total_seconds()
    assert 2.0 * 0.8 <= first_delay <= 2.0 * 1.2  # base backoff, with jitter

    assert await bot.app.flush_outbox() == 0  # not due yet: nothing is sent early
    assert len(fake.calls) == 1

    clock.advance(dt.timedelta(seconds=first_delay + 0.01))
    assert await bot.app.flush_outbox() == 1
    (row,) = await new_rows(bot, start)
    assert (row.status, row.attempts) == ("pending", 2)
    second_delay = (row.next_attempt_at - clock.now()).total_seconds()
    assert 4.0 * 0.8 <= second_delay <= 4.0 * 1.2  # doubled

    clock.advance(dt.timedelta(seconds=second_delay + 0.01))
    assert await bot.app.flush_outbox() == 1
    (row,) = await new_rows(bot, start)
    assert (row.status, row.attempts, row.lease_until) == ("sent", 3, None)
    assert row.sent_at == clock.now()
    assert len(fake.calls) == 3
    assert bot.app.metrics.value("dangjian_outbox_retries_total") == 2


async def test_retry_after_hint_is_respected(quick_bot: Running, clock: FakeClock) -> None:
    bot = quick_bot
    install(
        bot,
        lambda m, n: (
            Delivery(DeliveryStatus.RETRY, "rate limited", retry_after=45.0) if n == 1 else sent(m, n)
        ),
    )
    start = await last_id(bot)
    await post(bot, DM, ZHANG_SAN, "帮助")
    await bot.app.flush_outbox()
    (row,) = await new_rows(bot, start)
    assert (row.next_attempt_at - clock.now()).total_seconds() >= 45.0
    clock.advance(dt.timedelta(seconds=44))
    assert await bot.app.flush_outbox() == 0
    clock.advance(dt.timedelta(seconds=2))
    assert await bot.app.flush_outbox() == 1
    assert (await new_rows(bot, start))[0].status == "sent"


async def test_retries_give_up_after_max_attempts(quick_bot: Running, clock: FakeClock) -> None:
    bot = quick_bot
    fake = install(bot, lambda m, n: Delivery(DeliveryStatus.RETRY, f"timeout #{n}"))
    start = await last_id(bot)
    await post(bot, DM, ZHANG_SAN, "帮助")
    for _ in range(10):
        await bot.app.flush_outbox()
        clock.advance(dt.timedelta(seconds=61))
    (row,) = await new_rows(bot, start)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "timeout #3")
    assert len(fake.calls) == 3
    assert bot.app.metrics.value("dangjian_outbox_failures_total") == 1


async def test_permanent_failure_is_marked_failed_at_once(quick_bot: Running, clock: FakeClock) -> None:
    bot = quick_bot
    fake = install(bot, lambda m, n: Delivery(DeliveryStatus.FAILED, "user not found"))
    start = await last_id(bot)
    await post(bot, DM, ZHANG_SAN, "帮助")
    await bot.app.flush_outbox()
    clock.advance(dt.timedelta(hours=1))
    assert await bot.app.flush_outbox() == 0  # never retried
    (row,) = await new_rows(bot, start)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "user not found")
    assert len(fake.calls) == 1


async def test_one_failure_does_not_hold_back_the_rest_of_the_batch(quick_bot: Running) -> None:
    bot = quick_bot
    install(
        bot, lambda m, n: Delivery(DeliveryStatus.FAILED, "blocked") if "详情已私信" in m.text else sent(m, n)
    )
    start = await last_id(bot)
    await post(bot, "group:第一党支部", ZHANG_SAN, "党费 50")  # a group notice and a private detail
    await bot.app.flush_outbox()
    outcome = sorted(
        (r.payload["conversation_id"] or r.payload["user_id"], r.status) for r in await new_rows(bot, start)
    )
    assert outcome == [(ZHANG_SAN, "sent"), ("group:第一党支部", "failed")]


async def test_platform_exception_is_a_transient_failure(quick_bot: Running, clock: FakeClock) -> None:
    bot = quick_bot
    fake = install(bot, sent)
    fake.raise_next = ConnectionResetError("peer reset")
    start = await last_id(bot)
    await post(bot, DM, ZHANG_SAN, "帮助")
    assert await bot.app.flush_outbox() == 1
    (row,) = await new_rows(bot, start)
    assert row.status == "pending" and "peer reset" in row.last_error
    clock.advance(dt.timedelta(seconds=3))
    assert await bot.app.flush_outbox() == 1
    assert (await new_rows(bot, start))[0].status == "sent"


async def test_rows_for_a_platform_without_messenger_fail(quick_bot: Running) -> None:
    bot = quick_bot
    install(bot, sent)
    bot.app.dispatcher.messengers.pop(Platform.LOCAL)
    start = await last_id(bot)
    await post(bot, DM, ZHANG_SAN, "帮助")
    await bot.app.flush_outbox()
    (row,) = await new_rows(bot, start)
    assert row.status == "failed" and "not enabled" in row.last_error


async def test_crash_mid_delivery_is_redelivered_after_the_lease(
    quick_bot: Running, clock: FakeClock
) -> None:
    bot = quick_bot
    fake = install(bot, sent)
    fake.raise_next = Crash()
    start = await last_id(bot)
    await post(bot, DM, ZHANG_SAN, "帮助")
    with pytest.raises(Crash):
        await bot.app.dispatcher.drain_once()
    (row,) = await new_rows(bot, start)
    assert row.status == "sending" and row.lease_until is not None
    assert await bot.app.flush_outbox() == 0  # still leased: another instance would not take it yet
    clock.advance(dt.timedelta(seconds=bot.app.settings.outbox.lease_seconds + 1))
    assert await bot.app.flush_outbox() == 1
    (row,) = await new_rows(bot, start)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(fake.calls) == 2  # at least once: delivered again after the crash


# -- handler failures ------------------------------------------------------------------------------


def register_failing_command(bot: Running) -> None:
    @bot.app.router.command("boom", "爆炸", help="")
    async def boom(ctx: HandlerContext) -> None:
        ctx.audit("boom_before_failure")
        ctx.reply("这句不应发出")
        assert ctx.member is not None
        raise RuntimeError("handler bug")


async def test_handler_exception_gives_a_polite_chinese_reply(bot: Running) -> None:
    register_failing_command(bot)
    for conversation, text in ((DM, "/boom"), ("group:第一党支部", "爆炸")):
        data = await bot.say(conversation, ZHANG_SAN, text, message_id=f"boom-{conversation}")
        assert [r["text"] for r in data["replies"]] == [INTERNAL_ERROR]
        assert data["replies"][0]["conversation_id"] == conversation
        transcript = await bot.transcript(conversation)
        assert transcript[-1]["sender_id"] == "bot" and INTERNAL_ERROR in transcript[-1]["text"]

    async with bot.app.sessions() as session:
        audits = (
            await session.execute(select(func.count()).where(AuditEntry.action == "boom_before_failure"))
        ).scalar_one()
        texts = (await session.execute(select(OutboxMessage.payload))).scalars().all()
        logged = (
            await session.execute(select(func.count()).where(InboundMessage.message_id.like("boom-%")))
        ).scalar_one()
    assert audits == 0  # the handler's writes were rolled back
    assert not any(p["text"] == "这句不应发出" for p in texts)
    assert logged == 2  # the message itself is logged once (and so deduplicated)

    # The same message id again is a duplicate, not a second error reply.
    again = await bot.say(DM, ZHANG_SAN, "/boom", message_id=f"boom-{DM}")
    assert again["duplicate"] is True and again["replies"] == []

    # And the bot keeps serving.
    data = await bot.say(DM, ZHANG_SAN, "党费 50")
    assert any("已登记" in r["text"] for r in data["replies"])
    async with bot.app.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Response))).scalar_one() == 1


async def test_enqueued_messages_are_written_together_in_order_and_dropped_on_rollback(quick_bot: Running) -> None:
    from bot.db.outbox import enqueue
    from bot.message import Recipient

    app = quick_bot.app
    out = [OutgoingMessage(Recipient(Platform.LOCAL, user_id=f"u{i}"), f"第{i}条") for i in range(3)]
    async with app.sessions() as session:
        before = (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
    with pytest.raises(RuntimeError):
        async with app.sessions() as session, session.begin():
            enqueue(session, out[0], app.clock.now(), reason="test")
            raise RuntimeError("the handler failed")  # nothing of this transaction may be sent
    inserts: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX"):
            inserts.append(statement)

    event.listen(app.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with app.sessions() as session, session.begin():
            for message in out:
                enqueue(session, message, app.clock.now(), reason="test")
            assert inserts == []  # staged, not written yet
            # The next statement writes them first, all three in one INSERT: the transaction reads its writes.
            assert (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one() == before + 3
            assert len(inserts) == 1
    finally:
        event.remove(app.engine.sync_engine, "before_cursor_execute", seen)
    async with app.sessions() as session:
        rows = (await session.execute(select(OutboxMessage.payload).where(OutboxMessage.reason == "test")
                                      .order_by(OutboxMessage.id))).scalars().all()
    assert [r["text"] for r in rows] == ["第0条", "第1条", "第2条"]
