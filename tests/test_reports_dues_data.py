"""dues_data (the SQL grid behind the 党费收缴登记表 and /compliance) against a brute-force reading of the
stored answers, including the rare cases: a quarterly and a day-labelled campaign, two answers in one
month, a member who answered and was then deactivated, one who moved branch, marked answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from bot.config import Settings
from bot.db.tables import Campaign, Member, Org, Response
from bot.reports.dues_ledger import dues_data
from bot.reports.ledger_model import month_end
from bot.reports.periods import parse_period
from tests.test_reports_ledgers import stop_bot, two_months_of_dues

UTC = dt.UTC


def campaign(org: Org, period: str, at: dt.datetime) -> Campaign:
    return Campaign(form_key="dues", period=period, org_id=org.id, schedule_key="test", title=f"党费 {period}",
                    audience={}, opened_at=at, deadline_at=at + dt.timedelta(days=5))  # fmt: skip


def answer(c: Campaign, m: Member, fen: int | None, at: dt.datetime, **kw: Any) -> Response:
    return Response(campaign_id=c.id, member_id=m.id, values={"amount": fen}, amount_fen=fen, entered_by=m.id,
                    created_at=at, updated_at=at, **kw)  # fmt: skip


def month_of(c: Campaign) -> int | None:
    return int(c.period[5:7]) if c.period[5:7].isdigit() else None


def in_period(c: Campaign, label: str) -> bool:
    """Campaign labels starting inside the report period (2026 / 2026-Q4 / 2026-11)."""
    if "-Q" in label:
        first = (int(label[-1]) - 1) * 3 + 1
        return c.period == label or any(c.period.startswith(f"{label[:4]}-{m:02d}") for m in range(first, first + 3))
    return c.period == label or c.period.startswith(label + "-")


def brute_force(orgs: list[Org], members: list[Member], campaigns: list[Campaign], rows: list[tuple[Campaign, Response]],
                months: list[int], year: int) -> dict[int, dict[str, Any]]:  # fmt: skip
    """Per branch, straight from the ORM objects: what the ledger must show. A member's cells are the
    answers to their current branch's campaigns; their paid total counts every branch in scope."""
    ids = {o.id for o in orgs}
    mine = [(c, r) for c, r in rows if c.org_id in ids]
    answered = {r.member_id for _c, r in mine}
    out: dict[int, dict[str, Any]] = {}
    for org in orgs:
        here = [(c, r) for c, r in mine if c.org_id == org.id]
        held = sorted({m for c in campaigns if c.org_id == org.id and (m := month_of(c)) in months})
        listed = [m for m in members if m.org_id == org.id and (m.active or m.id in answered)]
        cells: dict[tuple[int, int], int] = {}
        for c, r in here:
            if (mo := month_of(c)) is not None:
                cells[(r.member_id, mo)] = cells.get((r.member_id, mo), 0) + (r.amount_fen or 0)
        owed = {m.id: [mo for mo in held if month_end(year, mo) >= m.created_at.date()] for m in listed}
        out[org.id] = {
            "months": held,
            "names": [m.name for m in listed],
            "cells": {m.id: tuple(cells.get((m.id, mo)) for mo in months) for m in listed},
            "paid": {m.id: sum(r.amount_fen or 0 for _c, r in mine if r.member_id == m.id) for m in listed},
            "paid_total": sum(r.amount_fen or 0 for _c, r in here),
            "payments": len({(r.member_id, c.period[:7]) for c, r in here}),
            "expected": sum(len(v) for v in owed.values()),
            "unpaid": {m.id: [mo for mo in owed[m.id] if (m.id, mo) not in cells] for m in listed},
            "month_totals": {mo: sum(v for (_mid, x), v in cells.items() if x == mo) for mo in held},
        }
    return out


async def test_dues_data_matches_the_answers(settings: Settings) -> None:
    running, _clock = await two_months_of_dues(settings)
    try:
        async with running.app.sessions() as db:
            orgs = list((await db.execute(select(Org).where(Org.kind == "branch").order_by(Org.path))).scalars())
            first, second = orgs[0], orgs[1]
            people = {m.name: m for m in (await db.execute(select(Member))).scalars()}
            at = dt.datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
            q4 = campaign(first, "2026-Q4", at)
            day = campaign(first, "2026-11-27", at)
            dec = campaign(second, "2026-12", at)
            db.add_all([q4, day, dec])
            await db.flush()
            db.add_all([
                answer(q4, people["张三"], 13500, at),  # a quarter's dues at once: a payment, in no month column
                answer(q4, people["王五"], None, at, late=True),
                answer(day, people["张三"], 500, at, flagged=True),  # a second November answer: summed
                answer(day, people["李四"], 4500, at),
                answer(dec, people["孙丽"], 3000, at),
            ])  # fmt: skip
            people["李四"].active = False  # answered in October: still listed
            people["陈七"].org_id = second.id  # moved: listed in the second branch, October stays the first's
            await db.commit()
        async with running.app.sessions() as db:
            orgs = list((await db.execute(select(Org).where(Org.kind == "branch").order_by(Org.path))).scalars())
            members = list((await db.execute(select(Member).order_by(Member.org_id, Member.id))).scalars())
            campaigns = list((await db.execute(select(Campaign).where(Campaign.form_key == "dues"))).scalars())
            rows = list((await db.execute(
                select(Campaign, Response).join(Response, Response.campaign_id == Campaign.id)
                .where(Campaign.form_key == "dues"))).tuples())  # fmt: skip
            for label in ("2026", "2026-Q4", "2026-11"):
                period = parse_period(label)
                assert period is not None
                data = await dues_data(db, orgs, period)
                scoped = [c for c in campaigns if in_period(c, label)]
                answers = [(c, r) for c, r in rows if in_period(c, label)]
                want = brute_force(orgs, members, scoped, answers, period.months, period.year)
                for d in data:
                    w = want[d.org.id]
                    assert d.months_collected == w["months"], (label, d.org.name)
                    assert [r.member.name for r in d.rows] == w["names"]
                    assert {r.member.id: r.amounts for r in d.rows} == w["cells"], (label, d.org.name)
                    assert {r.member.id: r.paid_fen for r in d.rows} == w["paid"], (label, d.org.name)
                    assert d.paid_total == w["paid_total"] and d.payments == w["payments"], (label, d.org.name)
                    assert d.expected_payments == w["expected"]
                    assert {r.member.id: r.unpaid_months for r in d.rows} == w["unpaid"]
                    assert d.month_totals == w["month_totals"], (label, d.org.name)
                where = {r.member.name: (d.org.name, r) for d in data for r in d.rows}
                assert where["张三"][1].marks[11].flagged and "李四" in where and where["陈七"][0] == second.name
    finally:
        await stop_bot(running)
