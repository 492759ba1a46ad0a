"""A simulated month on the fake clock: announcements, reminders only to non-respondents, escalations,
quiet hours, nudge caps, a member on leave left alone. No sleeps: the clock jumps from event to event."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from bot.clock import SHANGHAI, FakeClock
from bot.db.tables import NudgeLog
from tests.conftest import Running, start_bot, stop_bot

G1 = "group:第一党支部"
SECRETARY_DM = "dm:13800000001"  # 王建国
ADMIN_DM = "dm:13800000014"  # 郑华


async def run_until(bot: Running, clock: FakeClock, end: dt.datetime, actions: dict[dt.datetime, Any] | None = None) -> None:
    """Jump the clock to each scheduled event (and each scripted member action) up to ``end``."""
    pending = dict(sorted((actions or {}).items()))
    runner = bot.app.runner
    while True:
        nd = runner.next_due(clock.now())
        next_action = min(pending) if pending else None
        candidates = [t for t in (nd, next_action) if t is not None and t <= end]
        if not candidates:
            break
        at = min(candidates)
        clock.set(at)
        if next_action == at:
            await pending.pop(at)(bot)
        else:
            await runner.run_due(at)
            await bot.app.flush_outbox()
    clock.set(end)


def local(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts).replace(tzinfo=SHANGHAI)


async def test_simulated_november(settings_factory: Any) -> None:
    settings = await settings_factory(**{"demo.announce_current": False, "nudges.max_per_day": 1})
    clock = FakeClock(local("2026-11-01T00:00:00"))
    bot = await start_bot(settings, clock)
    try:

        async def zhang_pays(b: Running) -> None:
            await b.say(G1, "13800000003", "党费 45")

        async def li_on_leave(b: Running) -> None:
            reply = await b.say("dm:13800000004", "13800000004", "请假 至 11月30日 外出学习")
            assert "已登记请假" in reply["replies"][0]["text"]

        await run_until(
            bot, clock, local("2026-11-17T00:00:00"),
            {local("2026-11-03T10:00:00"): zhang_pays, local("2026-11-04T10:00:00"): li_on_leave},
        )
        group = await bot.transcript(G1)
        bot_lines = [m for m in group if m["sender_id"] == "bot"]
        announce = [m for m in bot_lines if "11月党费收缴" in m["text"] and "现已开始" in m["text"]]
        assert len(announce) == 1
        assert dt.datetime.fromisoformat(announce[0]["at"]).astimezone(SHANGHAI) == local("2026-11-02T09:00:00")
        reminders = [m for m in bot_lines if "尚未填报" in m["text"] and "党费" in m["text"]]
        assert reminders, "dues reminders were sent"
        for line in reminders:
            assert "张三" not in line["text"]  # answered
            assert "李四" not in line["text"]  # on leave
            assert "王五" in line["text"]
        # Quiet hours: nothing between 21:00 and 08:00 local time.
        for line in bot_lines:
            at = dt.datetime.fromisoformat(line["at"]).astimezone(SHANGHAI)
            assert dt.time(8, 0) <= at.time() <= dt.time(21, 0), line
        # Escalation: the secretary hears privately who is still missing.
        secretary = [m["text"] for m in await bot.transcript(SECRETARY_DM) if m["sender_id"] == "bot"]
        escalation = [t for t in secretary if "尚未填报" in t and "党费" in t]
        assert escalation and "王五" in escalation[-1] and "张三" not in escalation[-1]
        # The committee (admin) hears which branches are behind.
        admin = [m["text"] for m in await bot.transcript(ADMIN_DM) if m["sender_id"] == "bot"]
        assert any("支部尚未全部完成" in t for t in admin)
        # Nudge cap: at most one nudge per member per day.
        async with bot.app.sessions() as session:
            rows = (await session.execute(select(NudgeLog.member_id, NudgeLog.at))).all()
        per_day: dict[tuple[int, dt.date], int] = {}
        for member_id, at in rows:
            key = (member_id, at.astimezone(SHANGHAI).date())
            per_day[key] = per_day.get(key, 0) + 1
        assert per_day and max(per_day.values()) <= 1
    finally:
        await stop_bot(bot)


async def test_each_occurrence_claimed_once_when_run_twice(settings_factory: Any) -> None:
    settings = await settings_factory(**{"demo.announce_current": False})
    clock = FakeClock(local("2026-11-02T09:00:00"))
    bot = await start_bot(settings, clock)
    try:
        first = await bot.app.runner.run_due(clock.now())
        second = await bot.app.runner.run_due(clock.now())
        assert first.executed and not second.executed
        assert second.already_claimed == len(first.executed) + len(first.skipped_late)
        async with bot.app.sessions() as session:
            from bot.db.tables import OutboxMessage

            payloads = (await session.execute(select(OutboxMessage.payload).where(OutboxMessage.reason == "announce"))).scalars().all()
        dues = [p for p in payloads if "党费收缴" in p["text"]]
        assert sorted(p["conversation_id"] for p in dues) == ["group:第一党支部", "group:第二党支部"]
    finally:
        await stop_bot(bot)
