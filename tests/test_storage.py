"""Storage on the selected backend (SQLite by default, PostgreSQL with DANGJIAN_TEST_DATABASE_URL):
migrations, unique constraints, aware datetimes and all-or-nothing transactions."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import SHANGHAI
from bot.db.engine import create_engine, session_factory
from bot.db.tables import (
    Base,
    Campaign,
    InboundMessage,
    Member,
    OccurrenceClaim,
    Org,
    Response,
)
from bot.migrations import upgrade
from tests.conftest import PG_URL, REQUIRE

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
EXPECTED_TABLES = {
    "orgs", "members", "chat_bindings", "campaigns", "responses", "response_revisions", "outbox",
    "inbound_log", "audit_log", "occurrence_claims", "nudge_log", "local_chat",
}  # fmt: skip


@pytest.fixture
async def engine(settings_factory: Any) -> AsyncIterator[AsyncEngine]:
    settings = await settings_factory()
    eng = create_engine(settings.database_url)
    await upgrade(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


async def _count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _org(session: AsyncSession, path: str = "机关党委/测试支部") -> Org:
    org = Org(name=path.split("/")[-1], path=path, kind="branch", created_at=NOW)
    session.add(org)
    await session.flush()
    return org


async def _member(session: AsyncSession, org: Org, name: str, mobile: str | None) -> Member:
    member = Member(name=name, mobile=mobile, org_id=org.id, created_at=NOW)
    session.add(member)
    await session.flush()
    return member


async def _campaign(session: AsyncSession, org: Org) -> Campaign:
    campaign = Campaign(
        form_key="dues", period="2026-11", org_id=org.id, title="11月党费收缴", opened_at=NOW,
        deadline_at=NOW + dt.timedelta(days=5),
    )  # fmt: skip
    session.add(campaign)
    await session.flush()
    return campaign


def _response(campaign: Campaign, member: Member, amount_fen: int) -> Response:
    return Response(
        campaign_id=campaign.id, member_id=member.id, values={"amount": amount_fen}, amount_fen=amount_fen,
        entered_by=member.id, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def _inbound(message_id: str, platform: str = "local") -> InboundMessage:
    return InboundMessage(
        platform=platform, message_id=message_id, conversation_id="dm:1", sender_id="1", text="党费 50",
        received_at=NOW,
    )  # fmt: skip


def _claim(key: str) -> OccurrenceClaim:
    return OccurrenceClaim(
        key=key, schedule_key="dues", period="2026-11", kind="announce", due_at=NOW, claimed_at=NOW
    )


async def test_selected_backend_is_in_use(engine: AsyncEngine) -> None:
    if REQUIRE and not PG_URL:
        pytest.fail("DANGJIAN_TEST_REQUIRE_SERVICES=1 but DANGJIAN_TEST_DATABASE_URL is not set")
    assert engine.dialect.name == ("postgresql" if PG_URL else "sqlite")


# -- migrations ------------------------------------------------------------------------------------


async def test_migrations_apply_twice_idempotently(engine: AsyncEngine, sessions: Any) -> None:
    async with sessions() as session, session.begin():
        await _org(session)
    await upgrade(engine)  # second time (the fixture ran the first): a no-op
    await upgrade(engine)
    async with engine.connect() as conn:
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert len(versions) == 1
    assert tables >= EXPECTED_TABLES
    assert await _count(sessions, Org) == 1  # data survives re-running migrations


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    """The Alembic history creates exactly what bot/db/tables.py declares (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def diff(conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []


# -- unique constraints ----------------------------------------------------------------------------


async def test_inbound_platform_message_id_is_unique(sessions: Any) -> None:
    async with sessions() as session, session.begin():
        session.add(_inbound("m-1"))
        session.add(_inbound("m-1", platform="dingtalk"))  # same id on another platform is fine
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            session.add(_inbound("m-1"))
    assert await _count(sessions, InboundMessage) == 2


async def test_response_campaign_member_is_unique(sessions: Any) -> None:
    async with sessions() as session, session.begin():
        org = await _org(session)
        member = await _member(session, org, "张三", "13900000003")
        campaign = await _campaign(session, org)
        session.add(_response(campaign, member, 5000))
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            session.add(_response(campaign, member, 6000))
    async with sessions() as session:
        rows = (await session.execute(select(Response))).scalars().all()
    assert [(r.member_id, r.amount_fen) for r in rows] == [(member.id, 5000)]


async def test_occurrence_claim_key_is_unique(sessions: Any) -> None:
    async with sessions() as session, session.begin():
        session.add(_claim("dues:2026-11:announce:2026-11-27T10:00"))
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            session.add(_claim("dues:2026-11:announce:2026-11-27T10:00"))
    assert await _count(sessions, OccurrenceClaim) == 1


async def test_member_mobile_is_unique_but_may_be_missing(sessions: Any) -> None:
    async with sessions() as session, session.begin():
        org = await _org(session)
        await _member(session, org, "张三", "13900000003")
        await _member(session, org, "无手机甲", None)
        await _member(session, org, "无手机乙", None)  # several members without a mobile are fine
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await _member(session, org, "冒名", "13900000003")
    assert await _count(sessions, Member) == 3


# -- datetimes -------------------------------------------------------------------------------------


async def test_aware_datetimes_round_trip_as_utc(sessions: Any) -> None:
    shanghai = dt.datetime(2026, 11, 27, 23, 30, 15, 123456, tzinfo=SHANGHAI)  # 15:30:15 UTC, same day
    async with sessions() as session, session.begin():
        org = await _org(session)
        org.created_at = shanghai
        session.add(_claim("k"))
    async with sessions() as session:
        stored = (await session.execute(select(Org.created_at))).scalar_one()
        assert stored == shanghai
        assert stored.utcoffset() == dt.timedelta(0)
        assert stored.replace(tzinfo=None) == dt.datetime(2026, 11, 27, 15, 30, 15, 123456)
        # Comparisons in SQL use the instant, whatever zone the parameter is in.
        before = shanghai - dt.timedelta(seconds=1)
        after_utc = (shanghai + dt.timedelta(seconds=1)).astimezone(dt.UTC)
        found = (
            await session.execute(
                select(func.count()).where(Org.created_at > before, Org.created_at < after_utc)
            )
        ).scalar_one()
        assert found == 1
        later = dt.datetime(2026, 11, 28, 0, 0, tzinfo=SHANGHAI)  # 16:00 UTC, after the stored instant
        assert (await session.execute(select(func.count()).where(Org.created_at < later))).scalar_one() == 1


async def test_naive_datetime_is_refused(sessions: Any) -> None:
    with pytest.raises(Exception, match="naive"):
        async with sessions() as session, session.begin():
            session.add(Org(name="x", path="x", kind="branch", created_at=dt.datetime(2026, 11, 27, 10, 0)))
    assert await _count(sessions, Org) == 0


# -- transactions ----------------------------------------------------------------------------------


async def test_failed_transaction_leaves_nothing_half_written(sessions: Any) -> None:
    async with sessions() as session, session.begin():
        org = await _org(session, "机关党委/已有支部")
        await _member(session, org, "已有", "13900000001")
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            new_org = await _org(session, "机关党委/新支部")
            await _member(session, new_org, "新人甲", "13900000002")
            campaign = await _campaign(session, new_org)
            session.add(_inbound("half-1"))
            await session.flush()
            assert campaign.id is not None
            await _member(session, new_org, "重复", "13900000001")  # violates members.mobile
    assert await _count(sessions, Org) == 1
    assert await _count(sessions, Member) == 1
    assert await _count(sessions, Campaign) == 0
    assert await _count(sessions, InboundMessage) == 0


async def test_exception_in_python_code_rolls_back_the_transaction(sessions: Any) -> None:
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            await _org(session)
            session.add(_inbound("half-2"))
            await session.flush()
            raise RuntimeError("handler failed after writing")
    assert await _count(sessions, Org) == 0
    assert await _count(sessions, InboundMessage) == 0


async def test_json_columns_keep_unicode_and_nesting(sessions: Any) -> None:
    values = {"amount": 5000, "note": "补交十月 ¥50", "people": [{"member_id": 1, "name": "张三"}]}
    async with sessions() as session, session.begin():
        org = await _org(session)
        member = await _member(session, org, "张三", None)
        campaign = await _campaign(session, org)
        response = _response(campaign, member, 5000)
        response.values = values
        session.add(response)
    async with sessions() as session:
        assert (await session.execute(select(Response.values))).scalar_one() == values
