"""Helpers for the forms end-to-end tests (tests/test_forms_e2e*.py); this module holds no tests.

Everything goes through the local chat's HTTP API (``Running.say``) and is checked in the database.
The demo roster of 第一党支部 (bases in yuan → this month's dues):
王建国 书记 8000 → 120.00; 李红梅 委员、组织委员 6500 → 97.50; 张三 4500 → 45.00; 李四 3000 → 15.00;
王五 党小组长 (第二党小组) 12000 → 240.00; 赵六 联络员 5000 → 50.00; 陈七 离退休 4000 → 20.00; 刘洋 学生 → 0.20.
At start-up this month's dues campaign is open (deadline 2026-12-02 18:00).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bot.clock import SHANGHAI
from bot.db.campaigns import open_campaign
from bot.db.orgs import find_org
from bot.db.tables import Campaign, Member, Response, ResponseRevision
from tests.conftest import Running

GROUP1 = "group:第一党支部"
GROUP2 = "group:第二党支部"
MOBILE = {
    "王建国": "13800000001",
    "李红梅": "13800000002",
    "张三": "13800000003",
    "李四": "13800000004",
    "王五": "13800000005",
    "赵六": "13800000006",
    "陈七": "13800000007",
    "刘洋": "13800000008",
}
BASES = ["8000", "6500", "4500", "3000", "12000", "5000", "4000"]
EXPECTED = {"王建国": 12000, "李红梅": 9750, "张三": 4500, "李四": 1500, "王五": 24000, "赵六": 5000, "陈七": 2000, "刘洋": 20}
OPENED = dt.datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI)
DEADLINE = dt.datetime(2026, 11, 30, 18, 0, tzinfo=SHANGHAI)
DUES_DEADLINE = dt.datetime(2026, 12, 2, 18, 0, tzinfo=SHANGHAI)
COMMITTEE = ["书记", "副书记", "委员"]

_MONEY = re.compile(r"\d+(?:\.\d+)?\s*元|¥|￥|\d+\.\d\d(?!\d)|基数\D{0,4}\d")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def dm(name: str) -> str:
    return f"dm:{MOBILE[name]}"


def texts(data: dict[str, Any], conversation: str | None = None) -> list[str]:
    """The reply texts of one ``say`` (optionally only those sent to ``conversation``)."""
    return [r["text"] for r in data["replies"] if conversation is None or r["conversation_id"] == conversation]


def joined(data: dict[str, Any], conversation: str | None = None) -> str:
    return "\n".join(texts(data, conversation))


def bot_lines(transcript: list[dict[str, Any]]) -> list[str]:
    return [line["text"] for line in transcript if line["sender_id"] == "bot"]


async def say(bot: Running, conversation: str, name: str, text: str) -> dict[str, Any]:
    return await bot.say(conversation, MOBILE.get(name, name), text)


async def assert_group_private(bot: Running, *figures: str | int) -> None:
    """No amount or base in what the bot said in any group chat.

    Rejects "45.00", "45元", ¥, "基数 4500", every dues base of the roster, and the given figures
    (amounts typed in the test, yuan) as standalone numbers in the bot's group lines.
    """
    private = {Decimal(str(f)) for f in (*BASES, *figures)}
    for group in (GROUP1, GROUP2):
        for line in bot_lines(await bot.transcript(group)):
            assert not _MONEY.search(line), (group, line)
            numbers = {Decimal(n) for n in _NUMBER.findall(line)}
            assert not numbers & private, (group, line, numbers & private)


def assert_rejection(text: str) -> None:
    """One short Chinese sentence with an example."""
    assert "\n" not in text, text
    assert "例如" in text, text
    assert len(text) <= 90, (len(text), text)
    body = text.rstrip("。")
    assert "。" not in body and "！" not in body, text
    assert text.endswith(("。", "）")), text


async def branch_id(bot: Running, name: str = "第一党支部") -> int:
    async with bot.app.sessions() as s:
        org = await find_org(s, name)
        assert org is not None
        return org.id


async def member_id(bot: Running, name: str, mobile: str | None = None) -> int:
    async with bot.app.sessions() as s:
        stmt = select(Member.id).where(Member.name == name)
        if mobile:
            stmt = stmt.where(Member.mobile == mobile)
        ids = (await s.execute(stmt)).scalars().all()
    assert len(ids) == 1, (name, ids)
    return ids[0]


async def open_form(
    bot: Running,
    form_key: str,
    title: str,
    *,
    period: str = "2026-11",
    roles: list[str] | None = None,
    opened_at: dt.datetime = OPENED,
    deadline_at: dt.datetime = DEADLINE,
) -> int:
    org_id = await branch_id(bot)
    async with bot.app.sessions() as s, s.begin():
        campaign, created = await open_campaign(
            s, form_key=form_key, period=period, org_id=org_id, title=title, opened_at=opened_at,
            deadline_at=deadline_at, audience={"roles": roles} if roles else None,
        )  # fmt: skip
        assert created
        return campaign.id


async def dues_campaign(bot: Running, period: str = "2026-11") -> int:
    org_id = await branch_id(bot)
    async with bot.app.sessions() as s:
        stmt = select(Campaign.id).where(Campaign.form_key == "dues", Campaign.period == period, Campaign.org_id == org_id)
        return int((await s.execute(stmt)).scalar_one())


async def answers(bot: Running, *, campaign_id: int | None = None, form_key: str | None = None) -> list[Response]:
    async with bot.app.sessions() as s:
        stmt = select(Response).join(Campaign, Campaign.id == Response.campaign_id).order_by(Response.id)
        if campaign_id is not None:
            stmt = stmt.where(Response.campaign_id == campaign_id)
        if form_key is not None:
            stmt = stmt.where(Campaign.form_key == form_key)
        return list((await s.execute(stmt)).scalars().all())


async def answer_of(bot: Running, campaign_id: int, name: str, mobile: str | None = None) -> Response | None:
    mid = await member_id(bot, name, mobile or MOBILE.get(name))
    rows = [r for r in await answers(bot, campaign_id=campaign_id) if r.member_id == mid]
    return rows[0] if rows else None


async def revisions(bot: Running, response_id: int) -> list[ResponseRevision]:
    async with bot.app.sessions() as s:
        stmt = select(ResponseRevision).where(ResponseRevision.response_id == response_id).order_by(ResponseRevision.revision)
        return list((await s.execute(stmt)).scalars().all())


async def add_member(bot: Running, name: str, mobile: str, group: str, base_yuan: int | None) -> int:
    """A second member with a name already on the roster (同名)."""
    from bot.db.orgs import ensure_path

    org_id = await branch_id(bot)
    async with bot.app.sessions() as s, s.begin():
        group_org = await ensure_path(s, f"机关党委/第一党支部/{group}", OPENED, leaf_kind="group")
        member = Member(
            name=name, mobile=mobile, org_id=org_id, group_id=group_org.id, roles=",党员,", category="在职",
            dues_base_fen=base_yuan * 100 if base_yuan is not None else None, created_at=OPENED,
        )  # fmt: skip
        s.add(member)
        await s.flush()
        return member.id
