"""Group commit of inbound messages (bot.inbound.GroupCommit), on the real database.

Messages that arrive together share one transaction. One that fails (here a message id already stored,
which the KV claim no longer remembers) voids the group: nothing of it is stored, no dialogue state is
written to the KV, and each message is then handled alone by the pipeline's full path, stored once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, func, select

from bot.db.tables import Campaign, InboundMessage, Member, Response, ResponseRevision
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



def dingtalk_message(bot: Running, staff_id: str, text: str, message_id: str, conversation: str = "") -> IncomingMessage:
    return IncomingMessage(
        platform=Platform.DINGTALK,
        conversation_id=conversation or f"cid-{staff_id}",
        conversation_kind=ConversationKind.DIRECT,
        sender_id=staff_id,
        text=text,
        message_id=message_id,
        received_at=bot.app.clock.now(),
    )


async def give_dingtalk_ids(bot: Running, names: list[str]) -> dict[str, str]:
    ids = {name: f"dt-{i}" for i, name in enumerate(names)}
    async with bot.app.sessions() as s, s.begin():
        for name, staff_id in ids.items():
            member = (await s.execute(select(Member).where(Member.name == name))).scalar_one()
            member.dingtalk_userid = staff_id
    return ids


class Statements:
    """The SQL statements the bot's engine runs while counting (BEGIN/COMMIT are not statements here)."""

    def __init__(self, bot: Running) -> None:
        self.engine = bot.app.engine.sync_engine
        self.seen: list[str] = []

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            self.seen.append(" ".join(statement.split()[:3]).upper())

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def test_a_group_reads_its_senders_and_campaigns_once_and_writes_each_table_once(bot: Running) -> None:
    """Eight DingTalk members answer at once: the group costs the same six statements as one answer would
    (senders, inbound log, open campaigns, answers, revisions, replies), not six per answer."""
    dues = await dues_campaign(bot)
    names = list(MOBILE)
    ids = await give_dingtalk_ids(bot, names)
    group = [dingtalk_message(bot, ids[n], f"党费 {EXPECTED[n] / 100:g}", f"gp-{n}") for n in names]
    group.append(dingtalk_message(bot, "dt-nobody", "党费 50", "gp-stranger"))  # not on the roster
    with Statements(bot) as sql:
        results = await asyncio.gather(*(bot.app.inbound._group.submit(m) for m in group))
    assert all(r is not None for r in results)
    assert [r.replies[0].text for r in results if r is not None][-1].startswith("您好，未在党员名册中找到")
    once = [
        "SELECT MEMBERS.ID, MEMBERS.NAME,",  # the senders and their branches
        "INSERT INTO INBOUND_LOG",
        "SELECT MEMBERS.ID, CAMPAIGNS.ID",  # their open campaigns and answers
        "INSERT INTO RESPONSE_REVISIONS",
        "INSERT INTO OUTBOX",
    ]
    # New answers in one INSERT … RETURNING id on PostgreSQL; SQLite cannot return the ids of a multi-row
    # INSERT in order, so SQLAlchemy inserts those rows one by one (in-process: no round trips).
    answers = 1 if bot.app.settings.database_url.startswith("postgresql") else len(names)
    assert sorted(sql.seen) == sorted(once + ["INSERT INTO RESPONSES"] * answers), sql.seen
    amounts = await stored_amounts(bot, dues)
    assert {name: amounts[await member_id(bot, name)] for name in names} == {n: (EXPECTED[n], 1) for n in names}
    assert await inbound_rows(bot, "gp-") == len(group)


async def test_a_member_answering_twice_in_one_group_gets_one_answer_with_two_revisions(bot: Running) -> None:
    dues = await dues_campaign(bot)
    ids = await give_dingtalk_ids(bot, ["张三", "李四"])
    group = [
        dingtalk_message(bot, ids["张三"], "党费 40", "gq-1"),
        dingtalk_message(bot, ids["李四"], "党费 15", "gq-2"),
        dingtalk_message(bot, ids["张三"], "党费 45", "gq-3", conversation="cid-another-chat"),  # a correction
    ]
    results = await asyncio.gather(*(bot.app.inbound._group.submit(m) for m in group))
    assert all(r is not None for r in results)
    assert results[2] is not None and "已更新（第2次提交" in results[2].replies[0].text
    zhang = await member_id(bot, "张三")
    assert (await stored_amounts(bot, dues))[zhang] == (4500, 2)
    async with bot.app.sessions() as s:
        response_id = (await s.execute(select(Response.id).where(Response.member_id == zhang,
                                                                 Response.campaign_id == dues))).scalar_one()
        revisions = (await s.execute(select(ResponseRevision.revision, ResponseRevision.values)
                                     .where(ResponseRevision.response_id == response_id)
                                     .order_by(ResponseRevision.revision))).all()
    assert [r for r, _ in revisions] == [1, 2]
    assert revisions == [(1, {"amount": 4000}), (2, {"amount": 4500})]


async def test_answers_saved_in_a_transaction_are_read_back_in_it(bot: Running) -> None:
    """Staged answers are written before the transaction's next statement: its queries see them, and
    saving the same answer again before any query revises the staged row."""
    from bot.db.campaigns import current_revision, open_campaigns_with_answers, save_response

    dues = await dues_campaign(bot)
    zhang = await member_id(bot, "张三")
    now = bot.app.clock.now()
    async with bot.app.sessions() as s, s.begin():
        member = await s.get(Member, zhang)
        campaign = await s.get(Campaign, dues)
        assert member is not None and campaign is not None
        first = await save_response(s, campaign=campaign, member=member, values={"amount": 4000}, entered_by=member,
                                    now=now, platform="local", amount_fen=4000, existing=None)
        again = await save_response(s, campaign=campaign, member=member, values={"amount": 4500}, entered_by=member,
                                    now=now, platform="local", amount_fen=4500, existing=first.response)
        assert first.created and not again.created and again.response.revision == 2
        assert await current_revision(s, dues, zhang) == 2  # a query: the staged rows are written first
        answers = dict(await open_campaigns_with_answers(s, member, now))
        assert answers[campaign] is not None and answers[campaign].amount_fen == 4500
        third = await save_response(s, campaign=campaign, member=member, values={"amount": 5000}, entered_by=member,
                                    now=now, platform="local", amount_fen=5000, existing=answers[campaign])
        assert third.response.revision == 3
    assert (await stored_amounts(bot, dues))[zhang] == (5000, 3)
    async with bot.app.sessions() as s:
        stmt = select(func.count()).select_from(ResponseRevision).join(Response).where(Response.member_id == zhang)
        assert (await s.execute(stmt)).scalar_one() == 3


async def _command_calls(bot: Running, command: str) -> int | None:
    """Redis's own count of ``command`` calls (None on the in-process KV)."""
    redis = getattr(bot.app.kv, "_redis", None)
    if redis is None:
        return None
    stats = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_a_group_reads_its_dialogue_states_in_one_round_trip_and_continues_them(bot: Running) -> None:
    dues = await dues_campaign(bot)
    ids = await give_dingtalk_ids(bot, ["赵六", "李四", "张三"])
    started = await bot.app.inbound(dingtalk_message(bot, ids["赵六"], "党费", "gs-0"))  # asks for the amount
    assert started.replies and "党费" in started.replies[0].text
    gets, mgets = await _command_calls(bot, "get"), await _command_calls(bot, "mget")
    group = [
        dingtalk_message(bot, ids["李四"], "党费 15", "gs-1"),
        dingtalk_message(bot, ids["赵六"], "50", "gs-2"),  # the amount, inside the dialogue
        dingtalk_message(bot, ids["张三"], "党费 45", "gs-3"),
    ]
    results = await asyncio.gather(*(bot.app.inbound._group.submit(m) for m in group))
    assert all(r is not None for r in results)
    if gets is not None and mgets is not None:  # Redis: one MGET for the three, not a GET each
        assert await _command_calls(bot, "mget") == mgets + 1
        # (the outbox dispatcher, woken by these commits, may read a token or a quota counter meanwhile)
        assert (await _command_calls(bot, "get") or 0) - gets < len(group)
    amounts = await stored_amounts(bot, dues)
    assert amounts[await member_id(bot, "赵六")] == (5000, 1)
    assert amounts[await member_id(bot, "李四")] == (1500, 1)
    assert await bot.app.kv.get(session_key(group[1])) is None  # the dialogue is finished and cleared
