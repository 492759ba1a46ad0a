"""Campaigns (one collection of one form for one period and scope) and their responses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached

from bot.db.staged import StagedRow, stage
from bot.db.tables import Campaign, Member, Response, ResponseRevision


async def open_campaign(
    session: AsyncSession,
    *,
    form_key: str,
    period: str,
    org_id: int,
    title: str,
    opened_at: dt.datetime,
    deadline_at: dt.datetime,
    schedule_key: str = "",
    audience: dict[str, Any] | None = None,
    created_by: int | None = None,
) -> tuple[Campaign, bool]:
    """Return the campaign for (form, period, org, schedule), creating it if needed; True if created."""
    stmt = select(Campaign).where(
        Campaign.form_key == form_key,
        Campaign.period == period,
        Campaign.org_id == org_id,
        Campaign.schedule_key == schedule_key,
    )
    existing = (await session.execute(stmt)).scalar_one_or_none()
    if existing is not None:
        return existing, False
    campaign = Campaign(
        form_key=form_key,
        period=period,
        org_id=org_id,
        schedule_key=schedule_key,
        title=title,
        audience=audience or {},
        opened_at=opened_at,
        deadline_at=deadline_at,
        created_by=created_by,
    )
    session.add(campaign)
    await session.flush()
    return campaign, True


def in_audience(campaign: Campaign, member: Member) -> bool:
    return audience_admits(campaign.audience, member.roles, member.category)


def audience_admits(audience: Mapping[str, Any] | None, roles: str, category: str) -> bool:
    """A campaign's ``audience`` (roles / categories; none named = everyone) on one member's columns
    (roles packed as ",书记,委员,"): the same rule as the reports' SQL filter."""
    wanted_roles = list((audience or {}).get("roles") or [])
    categories = list((audience or {}).get("categories") or [])
    if wanted_roles and not any(f",{r}," in (roles or "") for r in wanted_roles):
        return False
    return not categories or category in categories


_PREFETCHED = "open_campaigns_by_member"  # session.info: member id → (now, [(campaign, answer)])


async def open_campaigns_with_answers(
    session: AsyncSession, member: Member, now: dt.datetime
) -> list[tuple[Campaign, Response | None]]:
    """Campaigns of the member's branch that are open now (opened, not closed), newest first,
    each with the member's answer (or None), in one query.

    A campaign stays answerable after its deadline (answers are stored as late) for the period it covers;
    "open" here means opened and within 31 days after the deadline.
    """
    prefetched: tuple[dt.datetime, list[tuple[Campaign, Response | None]]] | None = (
        session.info.get(_PREFETCHED, {}).pop(member.id, None)  # used once: answers change it
    )
    if prefetched is not None and prefetched[0] == now:
        return prefetched[1]
    return (await _read_open_campaigns(session, [member], now))[member.id]


async def prefetch_open_campaigns(session: AsyncSession, members: Sequence[Member], now: dt.datetime) -> None:
    """``open_campaigns_with_answers`` for a group of members in one query, kept in the session for them.

    Each entry is used once and dropped when the member's answer is saved, so a second message of the
    same member in the same transaction reads the database again."""
    if not members:
        return
    prefetched = session.info.setdefault(_PREFETCHED, {})
    for member_id, pairs in (await _read_open_campaigns(session, members, now)).items():
        prefetched[member_id] = (now, pairs)


async def _read_open_campaigns(
    session: AsyncSession, members: Sequence[Member], now: dt.datetime
) -> dict[int, list[tuple[Campaign, Response | None]]]:
    by_id = {m.id: m for m in members}
    params = {"member_ids": list(by_id), "now": now, "closed_after": now - dt.timedelta(days=31)}
    found: dict[int, list[tuple[Campaign, Response | None]]] = {member_id: [] for member_id in by_id}
    for member_id, campaign, response in (await session.execute(_open_campaigns_of_members(), params)).tuples():
        if in_audience(campaign, by_id[member_id]):
            found[member_id].append((campaign, response))
    return found


@cache
def _open_campaigns_of_members() -> Select[tuple[int, Campaign, Response]]:
    """Open campaigns of the members' branches, each with the member's answer, newest first; built once
    with bind parameters (the members as one expanding parameter): building it cost more than running it."""
    return (
        select(Member.id, Campaign, Response)
        .join(Campaign, Campaign.org_id == Member.org_id)
        .outerjoin(Response, (Response.campaign_id == Campaign.id) & (Response.member_id == Member.id))
        .where(
            Member.id.in_(bindparam("member_ids", expanding=True)),
            Campaign.opened_at <= bindparam("now", type_=Campaign.opened_at.type),
            Campaign.deadline_at >= bindparam("closed_after", type_=Campaign.deadline_at.type),
        )
        .order_by(Member.id, Campaign.deadline_at.desc(), Campaign.id.desc())
    )


class _Unknown:
    """For ``save_response(existing=UNKNOWN)``: the caller has not read the answer, look it up."""


UNKNOWN = _Unknown()


@dataclass(frozen=True, slots=True)
class SavedResponse:
    response: Response
    created: bool  # False: an earlier answer was replaced (a new revision)


_REVISIONS = cast(Table, ResponseRevision.__table__)
_RESPONSES = cast(Table, Response.__table__)
_CREATED = "answers_created"  # session.info: (campaign id, member id) → (Response, StagedRow) not written yet


async def current_revision(session: AsyncSession, campaign_id: int, member_id: int) -> int:
    """The member's answer's revision (0: not answered)."""
    stmt = select(Response.revision).where(Response.campaign_id == campaign_id, Response.member_id == member_id)
    return int((await session.execute(stmt)).scalar_one_or_none() or 0)


async def save_response(
    session: AsyncSession,
    *,
    campaign: Campaign,
    member: Member,
    values: dict[str, Any],
    entered_by: Member,
    now: dt.datetime,
    platform: str,
    amount_fen: int | None = None,
    flag_note: str = "",
    existing: Response | None | _Unknown = UNKNOWN,
) -> SavedResponse:
    """Insert or revise the member's answer; every revision is kept in response_revisions.

    ``existing``: the member's current answer (or None) when the caller read it in this transaction."""
    late = now > campaign.deadline_at
    session.info.get(_PREFETCHED, {}).pop(member.id, None)  # the member's open campaigns change now
    created_here: dict[tuple[int, int], tuple[Response, StagedRow]] = session.info.setdefault(_CREATED, {})
    staged: StagedRow | None = None
    response: Response | None
    if (campaign.id, member.id) in created_here:  # answered earlier in this transaction, not written yet
        response, staged = created_here[(campaign.id, member.id)]
    elif isinstance(existing, _Unknown):
        stmt = select(Response).where(Response.campaign_id == campaign.id, Response.member_id == member.id)
        response = (await session.execute(stmt)).scalar_one_or_none()
    else:
        response = existing
    created = response is None
    if response is None:
        row = {"campaign_id": campaign.id, "member_id": member.id, "values": values, "amount_fen": amount_fen,
               "revision": 1, "late": late, "flagged": bool(flag_note), "flag_note": flag_note,
               "entered_by": entered_by.id, "platform": platform, "created_at": now, "updated_at": now}
        # Staged: a group commit writes all its new answers in one INSERT (their revisions refer to them).
        # The object joins the session once its row is written (``_written``); until then a second save
        # of the same answer in this transaction finds it in ``created_here`` and updates the staged row.
        response = Response(**row)
        staged = stage(session, _RESPONSES, row, returns_id=True, on_insert=partial(_written, response))
        created_here[(campaign.id, member.id)] = (response, staged)
    else:
        response.values = values
        response.amount_fen = amount_fen
        response.revision += 1
        # A correction keeps the lateness of the first answer: an on-time payment stays on time.
        response.flagged = bool(flag_note)
        response.flag_note = flag_note
        response.entered_by = entered_by.id
        response.platform = platform
        response.updated_at = now
        if staged is not None:
            staged.values.update(values=values, amount_fen=amount_fen, revision=response.revision,
                                 flagged=response.flagged, flag_note=flag_note, entered_by=entered_by.id,
                                 platform=platform, updated_at=now)
    # Nothing reads a revision back in the transaction that writes it: staged, one INSERT per commit.
    stage(session, _REVISIONS, {"response_id": staged if staged is not None else response.id,
                                "revision": response.revision, "values": values, "entered_by": entered_by.id,
                                "created_at": now})
    return SavedResponse(response, created)


def _written(response: Response, session: Session, response_id: int) -> None:
    """A staged answer's row is in: the object joins the session as if loaded, so later changes flush."""
    session.info.get(_CREATED, {}).pop((response.campaign_id, response.member_id), None)
    response.id = response_id
    make_transient_to_detached(response)
    session.add(response)


async def last_values(session: AsyncSession, member: Member, form_key: str) -> dict[str, Any] | None:
    """The member's most recent answer to any campaign of this form (for 同上)."""
    stmt = (
        select(Response.values)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .where(Response.member_id == member.id, Campaign.form_key == form_key)
        .order_by(Response.updated_at.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def answered_campaign_ids(session: AsyncSession, member_id: int, campaign_ids: Sequence[int]) -> set[int]:
    """Which of ``campaign_ids`` the member has answered: one indexed query, whatever the branch size."""
    if not campaign_ids:
        return set()
    stmt = select(Response.campaign_id).where(
        Response.member_id == member_id, Response.campaign_id.in_(list(campaign_ids))
    )
    return {int(c) for (c,) in (await session.execute(stmt)).all()}


async def latest_campaign(session: AsyncSession, org_id: int, form_key: str, now: dt.datetime) -> Campaign | None:
    stmt = (
        select(Campaign)
        .where(Campaign.org_id == org_id, Campaign.form_key == form_key, Campaign.opened_at <= now)
        .order_by(Campaign.opened_at.desc(), Campaign.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def campaign_totals(session: AsyncSession, campaign_id: int) -> tuple[int, int]:
    """(answers, sum of amount_fen) for a campaign, aggregated in SQL."""
    stmt = select(func.count(Response.id), func.coalesce(func.sum(Response.amount_fen), 0)).where(
        and_(Response.campaign_id == campaign_id)
    )
    count, total = (await session.execute(stmt)).one()
    return int(count), int(total)
