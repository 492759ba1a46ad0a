"""The ledger data model (sheets of typed columns and rows) and what every ledger's queries share.

A ``Ledger`` is plain data; ``bot.reports.xlsx`` writes it as XLSX or CSV. The queries read plain tuples
of the columns needed (Core ``select``, never ORM objects), and a large ledger is read and assembled with
the cyclic garbage collector paused (``gc_paused``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import re
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bot.db.tables import Campaign, Member
from bot.reports.periods import ReportPeriod
from bot.reports.stats import period_filter

ColumnKind = Literal["text", "money", "number", "int"]


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    width: float = 12
    kind: ColumnKind = "text"


@dataclass
class Sheet:
    name: str  # the tab (≤ 31 characters)
    title: str  # first row, e.g. 第一党支部党费收缴登记表（2026年度）
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    totals: list[Any] | None = None
    notes: list[str] = field(default_factory=list)
    branch: str = ""
    freeze_columns: int = 2  # columns kept visible when scrolling right (序号, 姓名)


@dataclass
class Ledger:
    name: str  # 党费收缴登记表
    form_key: str
    period: ReportPeriod
    scope_name: str  # 第一党支部 / 机关党委 / 全部支部
    sheets: list[Sheet]
    generated_at: dt.datetime

    @property
    def display_name(self) -> str:
        return f"{self.scope_name}{self.name}（{self.period.title}）"

    def file_stem(self, org_hint: str = "") -> str:
        """An ASCII file name stem (platform uploads and shells like those best)."""
        stamp = self.generated_at.strftime("%Y%m%d%H%M%S")
        hint = re.sub(r"[^A-Za-z0-9_-]", "", org_hint)
        return "-".join(p for p in (self.form_key, self.period.label, hint, stamp) if p)


# ---- shared by the ledgers' queries ------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def month_of(label: str) -> int | None:
    """``2026-11`` / ``2026-11-27`` → 11."""
    m = re.match(r"^\d{4}-(\d{2})(?:-\d{2})?$", label or "")
    return int(m.group(1)) if m else None


def month_end(year: int, month: int) -> dt.date:
    """The last day of a month (a member added to the roster after it owes nothing for it)."""
    return dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)


def month_expr() -> ColumnElement[str]:
    return func.substr(Campaign.period, 1, 7)


def in_month(label: str) -> ColumnElement[bool]:
    """Campaigns of one month (``2026-11``, ``2026-11-27``): the same as ``substr(period, 1, 7) = label``,
    but a prefix ``LIKE`` costs PostgreSQL half as much per answer as ``substr`` in a 12-column pivot."""
    return Campaign.period.like(f"{label}%")


def stamp(at: dt.datetime, tz: dt.tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


async def org_names(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Member.id, Member.name).where(Member.id.in_(list(ids))))
    return dict(rows.tuples().all())


class LedgerMember(NamedTuple):
    """The roster columns a ledger shows: a tuple, not an ORM ``Member`` (20,000 of them in a large ledger)."""

    id: int
    org_id: int
    name: str
    category: str
    dues_base_fen: int | None
    joined_on: dt.date  # the (UTC) day the member was added to the roster


async def core_rows(conn: AsyncConnection, stmt: Select[Any]) -> list[Any]:
    """Plain Core execution (on the session's connection, or a side one): the rows as the driver gives
    them, without the ORM's result processing (a third of a second for a committee's 60,000 rows)."""
    return list((await conn.execute(stmt)).tuples())


@contextlib.asynccontextmanager
async def side_connection(session: AsyncSession) -> AsyncIterator[AsyncConnection | None]:
    """A second pooled connection, for queries that can run while the session's connection runs a long
    one. PostgreSQL only (each statement reads its own snapshot there anyway, READ COMMITTED); SQLite
    transactions here begin IMMEDIATE and would wait for the session's."""
    bind = session.bind
    if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
        async with bind.connect() as side:
            yield side
    else:
        yield None


async def member_rows(conn: AsyncConnection, org_ids: Sequence[int]) -> Sequence[Any]:
    """The roster columns of every member of these orgs (active or not), ordered by org and id."""
    stmt = (
        select(Member.id, Member.org_id, Member.name, Member.category, Member.dues_base_fen, Member.created_at,
               Member.active)
        .where(Member.org_id.in_(list(org_ids)))
        .order_by(Member.org_id, Member.id)
    )  # fmt: skip
    return await core_rows(conn, stmt)


def members_by_org(
    rows: Sequence[Any], org_ids: Sequence[int], responders: Collection[int]
) -> dict[int, list[LedgerMember]]:
    """Active members of each org, plus anyone (now inactive) who answered in the period, by id.

    Inactive members are dropped here rather than by an ``IN (answers…)`` subquery, which made the
    database scan the period's answers once more."""
    out: dict[int, list[LedgerMember]] = {oid: [] for oid in org_ids}
    for mid, oid, name, category, base, created, active in rows:
        if active or mid in responders:
            out.setdefault(oid, []).append(LedgerMember(mid, oid, name, category, base, created.date()))
    return out


async def ledger_members(
    session: AsyncSession, org_ids: Sequence[int], responders: Collection[int]
) -> dict[int, list[LedgerMember]]:
    return members_by_org(await member_rows(await session.connection(), org_ids), org_ids, responders)


class _GcPause:
    depth = 0  # nesting: exports may overlap at their awaits (event-loop thread only)
    ours = False  # whether the collector was switched off here (a collector already off is left alone)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a large ledger is read and assembled (~1 s), then one catch-up.

    A committee's dues ledger makes ~100,000 result rows, tuples and lists that all stay alive until the
    file is written and hold no reference cycles; yet as they pile up the collector runs full
    collections over them and the whole process heap, four or five per export (0.7–1.8 s). Nothing is
    lost by waiting: objects still go as soon as nothing refers to them; only garbage cycles (of any
    chat handled meanwhile) wait for the pause to end."""
    if _GcPause.depth == 0 and gc.isenabled():
        gc.disable()
        _GcPause.ours = True
    _GcPause.depth += 1
    try:
        yield
    finally:
        _GcPause.depth -= 1
        if _GcPause.depth == 0 and _GcPause.ours:
            _GcPause.ours = False
            gc.enable()


def campaigns_of(org_ids: Sequence[int], form_key: str, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(Campaign.org_id.in_(list(org_ids)), Campaign.form_key == form_key, period_filter(period))


async def months_held(
    conn: AsyncConnection, scope: ColumnElement[bool], org_ids: Sequence[int], period: ReportPeriod
) -> tuple[dict[int, set[int]], bool]:
    """Per org, the months of ``period`` with a campaign; and whether any campaign in scope is not a
    month's (``2026-Q4``, ``2026``)."""
    held: dict[int, set[int]] = {oid: set() for oid in org_ids}
    other = False
    stmt = select(Campaign.org_id, month_expr()).where(scope).distinct()
    in_period = set(period.months)
    for oid, label in await core_rows(conn, stmt):
        m = month_of(label)
        if m is not None and m in in_period:
            held[oid].add(m)
        else:
            other = True
    return held, other
