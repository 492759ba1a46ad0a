"""The foundation walkthrough, end to end over real HTTP on the selected backends.

The demo organisation is seeded and this month's dues collection is announced in each branch group.
Members answer in the group; the amount goes only to their 1:1 chat; the secretary's /stats counts them;
everything survives a restart on the same database; a replayed message id is stored once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.tables import Campaign, InboundMessage, LocalChatLine, Member, Response
from bot.message import ConversationKind, IncomingMessage, Platform
from tests.conftest import Running, start_bot, stop_bot

GROUP1 = "group:第一党支部"
GROUP2 = "group:第二党支部"
SECRETARY = "13800000001"  # 王建国, 书记 of 第一党支部
ZHANG_SAN = "13800000003"  # 张三
LI_SI = "13800000004"  # 李四
BRANCH1 = ["王建国", "李红梅", "张三", "李四", "王五", "赵六", "陈七", "刘洋"]
MONEY_RE = re.compile(r"\d+(?:\.\d+)?\s*元|¥|￥")


def dm(sender: str) -> str:
    return f"dm:{sender}"


def bot_lines(transcript: list[dict[str, Any]]) -> list[str]:
    return [line["text"] for line in transcript if line["sender_id"] == "bot"]


def without_mentions(text: str) -> str:
    return re.sub(r"^(@\S+\s*)+", "", text)


async def scalar(running: Running, stmt: Any) -> Any:
    async with running.app.sessions() as session:
        return (await session.execute(stmt)).scalar_one()


async def responses_of(running: Running, mobile: str) -> list[Response]:
    async with running.app.sessions() as session:
        stmt = select(Response).join(Member, Member.id == Response.member_id).where(Member.mobile == mobile)
        return list((await session.execute(stmt)).scalars().all())


async def stats_text(running: Running, conversation: str = dm(SECRETARY)) -> str:
    data = await running.say(conversation, SECRETARY, "/stats")
    assert len(data["replies"]) == 1, data
    return str(data["replies"][0]["text"])


def assert_stats(text: str, answered: int, answered_names: list[str]) -> None:
    assert f"{answered}/8" in text, text
    missing_line = next(line for line in text.splitlines() if line.startswith("未填报"))
    missing = [n for n in BRANCH1 if n not in answered_names]
    for name in missing:
        assert name in missing_line, (name, text)
    for name in answered_names:
        assert name not in missing_line, (name, text)


def assert_no_money_from_bot(transcript: list[dict[str, Any]], amount: str) -> None:
    for text in bot_lines(transcript):
        body = without_mentions(text)
        assert not MONEY_RE.search(body), text
        assert amount not in body, text


async def test_dues_walkthrough_then_restart(settings: Settings, clock: FakeClock) -> None:
    running = await start_bot(settings, clock)
    try:
        # The campaign was announced in both branch groups at start-up.
        for group in (GROUP1, GROUP2):
            announced = bot_lines(await running.transcript(group))
            assert len(announced) == 1
            assert "党费" in announced[0]
        assert await scalar(running, select(func.count()).select_from(Campaign)) == 2

        # 张三 answers `党费 50` in the group.
        first = await running.say(GROUP1, ZHANG_SAN, "党费 50")
        assert first["duplicate"] is False
        with_amount = [r for r in first["replies"] if "50" in without_mentions(r["text"])]
        assert with_amount, first
        for reply in with_amount:
            assert reply["conversation_id"] == dm(ZHANG_SAN)
            assert reply["private"] is True
        in_group = [r for r in first["replies"] if r["conversation_id"] == GROUP1]
        assert in_group and all("已登记" in r["text"] for r in in_group)

        zhang_dm = bot_lines(await running.transcript(dm(ZHANG_SAN)))
        assert len(zhang_dm) == 1
        assert "已登记" in zhang_dm[0] and "50.00元" in zhang_dm[0]

        assert_stats(await stats_text(running), 1, ["张三"])

        # 李四 answers with a bare `50`.
        second = await running.say(GROUP1, LI_SI, "50")
        assert all(
            r["conversation_id"] == dm(LI_SI)
            for r in second["replies"]
            if "50" in without_mentions(r["text"])
        )
        li_dm = bot_lines(await running.transcript(dm(LI_SI)))
        assert len(li_dm) == 1 and "已登记" in li_dm[0] and "50.00元" in li_dm[0]

        # Amounts never reach the group transcript (only the members' own typed lines carry them).
        group_transcript = await running.transcript(GROUP1)
        assert_no_money_from_bot(group_transcript, "50")
        typed = [(ln["sender_id"], ln["text"]) for ln in group_transcript if ln["sender_id"] != "bot"]
        assert typed == [(ZHANG_SAN, "党费 50"), (LI_SI, "50")]
        # The other branch saw nothing of it.
        assert len(await running.transcript(GROUP2)) == 1

        stats = await stats_text(running)
        assert_stats(stats, 2, ["张三", "李四"])
        assert "100.00" in stats  # the 1:1 stats may show the total...
        group_stats = await stats_text(running, GROUP1)
        assert_stats(group_stats, 2, ["张三", "李四"])
        assert not MONEY_RE.search(group_stats) and "100" not in group_stats  # ...the group one may not

        for mobile, fen in ((ZHANG_SAN, 5000), (LI_SI, 5000)):
            rows = await responses_of(running, mobile)
            assert [(r.amount_fen, r.platform, r.revision) for r in rows] == [(fen, "local", 1)]

        before = {
            conv: await running.transcript(conv)
            for conv in (GROUP1, GROUP2, dm(ZHANG_SAN), dm(LI_SI), dm(SECRETARY))
        }
        campaigns_before = await scalar(running, select(func.count()).select_from(Campaign))
    finally:
        await stop_bot(running)

    # Restart on the same database (an hour later): nothing is lost, nothing is announced twice.
    clock.advance(dt.timedelta(hours=1))
    running = await start_bot(settings, clock)
    try:
        for conv, lines in before.items():
            assert await running.transcript(conv) == lines, conv
        assert await scalar(running, select(func.count()).select_from(Campaign)) == campaigns_before
        assert len(await responses_of(running, ZHANG_SAN)) == 1
        assert len(await responses_of(running, LI_SI)) == 1
        assert_stats(await stats_text(running), 2, ["张三", "李四"])

        # The bot keeps working after the restart: a third member answers.
        await running.say(GROUP1, "13800000005", "党费 240")  # 王五
        assert_stats(await stats_text(running), 3, ["张三", "李四", "王五"])
        assert_no_money_from_bot(await running.transcript(GROUP1), "240")
    finally:
        await stop_bot(running)


async def test_reply_is_one_response_row(bot: Running) -> None:
    await bot.say(GROUP1, ZHANG_SAN, "党费 50")
    async with bot.app.sessions() as session:
        rows = (
            await session.execute(
                select(Response, Campaign, Member)
                .join(Campaign, Campaign.id == Response.campaign_id)
                .join(Member, Member.id == Response.member_id)
            )
        ).all()
    assert len(rows) == 1
    response, campaign, member = rows[0]
    assert member.name == "张三"
    assert campaign.form_key == "dues" and campaign.period == "2026-11"
    assert response.amount_fen == 5000
    assert response.entered_by == member.id
    assert response.late is False


async def test_same_message_id_twice_is_stored_once(bot: Running) -> None:
    first = await bot.say(GROUP1, ZHANG_SAN, "党费 50", message_id="walk-1")
    assert first["duplicate"] is False and first["replies"]
    second = await bot.say(GROUP1, ZHANG_SAN, "党费 50", message_id="walk-1")
    assert second["duplicate"] is True
    assert second["replies"] == []

    assert len(await responses_of(bot, ZHANG_SAN)) == 1
    assert (await responses_of(bot, ZHANG_SAN))[0].revision == 1  # not "updated" by the replay
    stmt = select(func.count()).select_from(InboundMessage).where(InboundMessage.message_id == "walk-1")
    assert await scalar(bot, stmt) == 1
    stmt = select(func.count()).select_from(LocalChatLine).where(LocalChatLine.message_id == "walk-1")
    assert await scalar(bot, stmt) == 1
    assert len(bot_lines(await bot.transcript(dm(ZHANG_SAN)))) == 1


async def test_same_message_id_concurrently_is_stored_once(bot: Running) -> None:
    body = {
        "conversation_id": dm(ZHANG_SAN),
        "sender_id": ZHANG_SAN,
        "text": "党费 50",
        "message_id": "race-1",
    }
    responses = await asyncio.gather(*(bot.client.post("/api/local/messages", json=body) for _ in range(4)))
    results = [await r.json() for r in responses]
    assert [r.status for r in responses] == [200] * 4
    assert sorted(r["duplicate"] for r in results) == [False, True, True, True]
    assert all(r["replies"] == [] for r in results if r["duplicate"])
    await bot.app.flush_outbox()
    assert len(await responses_of(bot, ZHANG_SAN)) == 1
    stmt = select(func.count()).select_from(InboundMessage).where(InboundMessage.message_id == "race-1")
    assert await scalar(bot, stmt) == 1


async def test_retry_after_the_line_was_stored_but_not_handled_is_handled(bot: Running) -> None:
    """A 503 can come after the transcript line was written (the database failed in the handling): the
    client's retry with the same id must then be handled, not taken for a duplicate by the transcript."""
    from bot.local_chat import DatabaseLocalBackend

    stored = await DatabaseLocalBackend(bot.app.services).append_member_line(
        dm(ZHANG_SAN), ZHANG_SAN, "党费 50", "retry-1"
    )
    assert stored
    again = await bot.say(dm(ZHANG_SAN), ZHANG_SAN, "党费 50", message_id="retry-1")
    assert again["duplicate"] is False and again["replies"]
    assert [(r.amount_fen, r.revision) for r in await responses_of(bot, ZHANG_SAN)] == [(5000, 1)]
    stmt = select(func.count()).select_from(LocalChatLine).where(LocalChatLine.message_id == "retry-1")
    assert await scalar(bot, stmt) == 1  # still one transcript line


async def test_replayed_message_id_after_restart_is_still_a_duplicate(
    settings: Settings, clock: FakeClock
) -> None:
    """Dedup does not depend on the (possibly in-memory) KV: the database remembers the id."""
    running = await start_bot(settings, clock)
    try:
        await running.say(dm(ZHANG_SAN), ZHANG_SAN, "党费 50", message_id="restart-1")
    finally:
        await stop_bot(running)
    running = await start_bot(settings, clock)
    try:
        again = await running.say(dm(ZHANG_SAN), ZHANG_SAN, "党费 60", message_id="restart-1")
        assert again == {"replies": [], "duplicate": True}
        rows = await responses_of(running, ZHANG_SAN)
        assert [(r.amount_fen, r.revision) for r in rows] == [(5000, 1)]
    finally:
        await stop_bot(running)


async def test_health_and_metrics(bot: Running) -> None:
    resp = await bot.client.get("/healthz")
    assert resp.status == 200
    health = await resp.json()
    assert health["status"] == "ok"
    assert health["database"]["ok"] is True
    assert health["database"]["backend"] == ("sqlite" if bot.app.settings.is_sqlite else "postgresql")
    assert health["kv"]["ok"] is True
    assert health["kv"]["backend"] == ("redis" if bot.app.settings.redis.url else "memory")
    assert health["platforms"]["local"]["ok"] is True

    await bot.say(dm(ZHANG_SAN), ZHANG_SAN, "帮助")
    resp = await bot.client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    body = await resp.text()
    assert "# TYPE dangjian_messages_in_total counter" in body
    match = re.search(r'^dangjian_messages_in_total\{platform="local"\} (\S+)$', body, re.M)
    assert match and float(match.group(1)) >= 1
    for line in body.splitlines():  # every sample line is "name{labels} value"
        if line and not line.startswith("#"):
            assert re.match(
                r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_]\w*="[^"]*"(,[a-zA-Z_]\w*="[^"]*")*\})? \S+$', line
            ), line


async def test_same_member_answering_in_two_chats_at_once(bot: Running) -> None:
    """Two different messages racing on the same (campaign, member) row: both are answered, one row remains.

    The loser of the race must not be mistaken for a replayed message id (silently dropped)."""
    members = [ZHANG_SAN, LI_SI, "13800000005", "13800000006"]
    for mobile in members:
        bodies = [
            {"conversation_id": GROUP1, "sender_id": mobile, "text": "党费 50", "message_id": f"g-{mobile}"},
            {
                "conversation_id": dm(mobile),
                "sender_id": mobile,
                "text": "党费 60",
                "message_id": f"d-{mobile}",
            },
        ]
        answers = await asyncio.gather(*(bot.client.post("/api/local/messages", json=b) for b in bodies))
        results = [await a.json() for a in answers]
        assert [a.status for a in answers] == [200, 200]
        for result in results:
            assert result["duplicate"] is False, result
            assert any("已登记" in r["text"] or "已更新" in r["text"] for r in result["replies"]), result
        rows = await responses_of(bot, mobile)
        assert len(rows) == 1 and rows[0].revision == 2
        assert rows[0].amount_fen in (5000, 6000)
        logged = select(func.count()).select_from(InboundMessage).where(InboundMessage.sender_id == mobile)
        assert await scalar(bot, logged) == 2
    await bot.app.flush_outbox()


async def test_two_instances_receiving_the_same_message_store_it_once(
    settings: Settings, clock: FakeClock
) -> None:
    """Two bot instances on one database (each with its own in-process KV unless Redis is shared) get the
    same platform message at the same moment: the database's unique message id lets exactly one through."""
    first = await start_bot(settings, clock)
    second = await start_bot(settings, clock)
    try:
        msg = IncomingMessage(
            platform=Platform.LOCAL,
            conversation_id=dm(ZHANG_SAN),
            conversation_kind=ConversationKind.DIRECT,
            sender_id=ZHANG_SAN,
            text="党费 50",
            message_id="both-instances-1",
            received_at=clock.now(),
        )
        results = await asyncio.gather(
            first.app.inbound(msg), second.app.inbound(msg), first.app.inbound(msg)
        )
        assert sorted(r.duplicate for r in results) == [False, True, True]
        assert [len(r.replies) > 0 for r in results if not r.duplicate] == [True]
        assert all(r.replies == () for r in results if r.duplicate)
        assert len(await responses_of(first, ZHANG_SAN)) == 1
        stmt = (
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.message_id == "both-instances-1")
        )
        assert await scalar(second, stmt) == 1
        # Only one seeding and one announcement happened, although two instances started.
        assert await scalar(first, select(func.count()).select_from(Campaign)) == 2
        assert len(bot_lines(await first.transcript(GROUP1))) == 1
    finally:
        await stop_bot(second)
        await stop_bot(first)
