"""Group commit of inbound messages (bot.inbound.GroupCommit), on the real database.

Messages that arrive together share one transaction, each in its own savepoint: one that fails (here a
message id already stored, which the KV claim no longer remembers) is rolled back alone and handled
again on its own, while the others are committed and answered.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.db.tables import InboundMessage, Response
from bot.message import ConversationKind, IncomingMessage, Platform
from tests.conftest import Running
from tests.test_forms_e2e_support import EXPECTED, MOBILE, dm, dues_campaign, member_id


def message(bot: Running, name: str, text: str, message_id: str) -> IncomingMessage:
    return IncomingMessage(
        platform=Platform.LOCAL,
        conversation_id=dm(name),
        conversation_kind=ConversationKind.DIRECT,
        sender_id=MOBILE[name],
        text=text,
        message_id=message_id,
        received_at=bot.app.clock.now(),
    )


async def stored_amounts(bot: Running, campaign_id: int) -> dict[int, tuple[int | None, int]]:
    async with bot.app.sessions() as s:
        rows = await s.execute(
            select(Response.member_id, Response.amount_fen, Response.revision).where(Response.campaign_id == campaign_id)
        )
        return {m: (a, r) for m, a, r in rows.all()}


async def inbound_rows(bot: Running, prefix: str) -> int:
    async with bot.app.sessions() as s:
        stmt = select(func.count(InboundMessage.id)).where(InboundMessage.message_id.like(f"{prefix}%"))
        return int((await s.execute(stmt)).scalar_one())


async def test_one_failing_message_does_not_sink_its_group(bot: Running) -> None:
    dues = await dues_campaign(bot)
    pipeline = bot.app.inbound
    metrics = bot.app.metrics
    # Stored once the normal way, then submitted again inside a group (as if the KV had forgotten it).
    first = await pipeline(message(bot, "张三", "党费 45", "gc-dup"))
    assert first.replies and not first.duplicate

    commits = metrics.value("dangjian_inbound_commits_total")
    group = [
        message(bot, "李四", "党费 15", "gc-1"),
        message(bot, "张三", "党费 45", "gc-dup"),  # fails inside the group: unique (platform, message_id)
        message(bot, "赵六", "党费 50", "gc-2"),
    ]
    # submit() queues synchronously, so the three are one group (one transaction).
    results = await asyncio.gather(*(pipeline._group.submit(m) for m in group))
    assert results[1] is None  # left for the caller's full path
    assert results[0] is not None and results[2] is not None
    assert "15.00元" in results[0].replies[0].text and "50.00元" in results[2].replies[0].text
    assert metrics.value("dangjian_inbound_commits_total") == commits + 1

    amounts = await stored_amounts(bot, dues)
    assert amounts[await member_id(bot, "李四")] == (1500, 1)
    assert amounts[await member_id(bot, "赵六")] == (5000, 1)
    assert amounts[await member_id(bot, "张三")] == (4500, 1)  # not stored twice
    assert await inbound_rows(bot, "gc-") == 3

    # The caller's full path then recognises the failed one as a duplicate.
    again = await pipeline(group[1])
    assert again.duplicate and not again.replies


async def test_answers_arriving_together_are_each_stored_once(bot: Running) -> None:
    """Concurrent posts to the local chat API: each answer stored once, each member answered."""
    dues = await dues_campaign(bot)
    names = list(MOBILE)

    async def post(name: str, message_id: str) -> dict[str, object]:
        body = {"conversation_id": dm(name), "sender_id": MOBILE[name], "text": "已交", "message_id": message_id}
        resp = await bot.client.post("/api/local/messages", json=body)
        assert resp.status == 200, await resp.text()
        data: dict[str, object] = await resp.json()
        return data

    answers = await asyncio.gather(
        *(post(n, f"gt-{n}") for n in names),
        post(names[0], f"gt-{names[0]}"),  # the same push delivered twice at once
        post(names[1], f"gt-{names[1]}-again"),  # a second answer of one member: a new revision
    )
    duplicates = [a for a in answers if a.get("duplicate")]
    assert len(duplicates) == 1
    amounts = await stored_amounts(bot, dues)
    for name in names:
        amount, revision = amounts[await member_id(bot, name)]
        assert amount == EXPECTED[name]
        assert revision == (2 if name == names[1] else 1)
    assert await inbound_rows(bot, "gt-") == len(names) + 1
    assert bot.app.metrics.value("dangjian_inbound_committed_messages_total") >= len(names) + 1
    await bot.app.flush_outbox()
    for name in names:
        lines = [line["text"] for line in await bot.transcript(dm(name)) if line["sender_id"] == "bot"]
        assert any("已登记" in t or "已更新" in t for t in lines), (name, lines)

