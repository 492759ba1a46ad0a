"""Group commit of inbound messages (bot.inbound.GroupCommit), on the real database.

Messages that arrive together share one transaction. One that fails (here a message id already stored,
which the KV claim no longer remembers) voids the group: nothing of it is stored, no dialogue state is
written to the KV, and each message is then handled alone by the pipeline's full path, stored once.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.db.tables import InboundMessage, Response
from bot.forms.session import session_key
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


async def test_a_failing_message_voids_its_group_and_each_is_handled_alone(bot: Running) -> None:
    dues = await dues_campaign(bot)
    pipeline = bot.app.inbound
    metrics = bot.app.metrics
    # Stored once the normal way, then submitted again inside a group (as if the KV had forgotten it).
    first = await pipeline(message(bot, "张三", "党费 45", "gc-dup"))
    assert first.replies and not first.duplicate

    commits = metrics.value("dangjian_inbound_commits_total")
    alone = metrics.value("dangjian_inbound_alone_total")
    group = [
        message(bot, "李四", "党费 15", "gc-1"),
        message(bot, "张三", "党费 45", "gc-dup"),  # fails inside the group: unique (platform, message_id)
        message(bot, "赵六", "党费", "gc-2"),  # starts a step-by-step dialogue (state in the KV)
    ]
    # submit() queues synchronously, so the three are one group (one transaction).
    results = await asyncio.gather(*(pipeline._group.submit(m) for m in group))
    assert results == [None, None, None]  # all left for the caller's full path
    assert metrics.value("dangjian_inbound_commits_total") == commits
    assert metrics.value("dangjian_inbound_alone_total") == alone + 3
    assert await inbound_rows(bot, "gc-") == 1  # only the first 张三 message
    assert await stored_amounts(bot, dues) == {await member_id(bot, "张三"): (4500, 1)}
    dialogue_key = session_key(group[2])
    assert await bot.app.kv.get(dialogue_key) is None  # the void group wrote no dialogue state

    # The full path, one by one: each stored once, the duplicate recognised, the dialogue started.
    li, dup, zhao = [await pipeline(m) for m in group]
    assert "15.00元" in li.replies[0].text
    assert dup.duplicate and not dup.replies
    assert zhao.replies and not zhao.duplicate
    assert await bot.app.kv.get(dialogue_key) is not None
    amounts = await stored_amounts(bot, dues)
    assert amounts[await member_id(bot, "李四")] == (1500, 1)
    assert amounts[await member_id(bot, "张三")] == (4500, 1)  # not stored twice
    assert await member_id(bot, "赵六") not in amounts  # asked for the amount, nothing stored yet
    assert await inbound_rows(bot, "gc-") == 3

    # The dialogue goes on from the state written after that commit.
    done = await pipeline(message(bot, "赵六", "50", "gc-3"))
    assert "50.00元" in done.replies[0].text
    assert (await stored_amounts(bot, dues))[await member_id(bot, "赵六")] == (5000, 1)
    assert await bot.app.kv.get(dialogue_key) is None  # finished: cleared after the commit


async def test_a_group_commits_once_and_writes_dialogue_state_after_it(bot: Running) -> None:
    await dues_campaign(bot)
    pipeline = bot.app.inbound
    metrics = bot.app.metrics
    commits = metrics.value("dangjian_inbound_commits_total")
    group = [message(bot, "李四", "党费", "gd-1"), message(bot, "赵六", "党费 50", "gd-2")]
    results = await asyncio.gather(*(pipeline._group.submit(m) for m in group))
    assert all(r is not None and r.replies for r in results)
    assert metrics.value("dangjian_inbound_commits_total") == commits + 1
    assert await bot.app.kv.get(session_key(group[0])) is not None  # 李四 is asked for the amount
    assert await inbound_rows(bot, "gd-") == 2


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

