"""Organisation tree queries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.tables import Org

KIND_BY_DEPTH_HINT = {"党委": "committee", "工委": "committee", "总支": "general_branch", "支部": "branch"}


def guess_kind(name: str, is_leaf: bool) -> str:
    if is_leaf:
        return "branch"
    for hint, kind in KIND_BY_DEPTH_HINT.items():
        if hint in name:
            return kind
    return "committee"


async def ensure_path(session: AsyncSession, path: str, now: dt.datetime, leaf_kind: str = "branch") -> Org:
    """Find or create every organisation along ``a/b/c``; the last one gets ``leaf_kind``."""
    parts = [p.strip() for p in path.split("/") if p.strip()]
    if not parts:
        raise ValueError("empty organisation path")
    parent: Org | None = None
    for i, name in enumerate(parts):
        full = "/".join(parts[: i + 1])
        org = (await session.execute(select(Org).where(Org.path == full))).scalar_one_or_none()
        if org is None:
            is_leaf = i == len(parts) - 1
            kind = leaf_kind if is_leaf else guess_kind(name, False)
            org = Org(name=name, path=full, kind=kind, parent_id=parent.id if parent else None, created_at=now)
            session.add(org)
            await session.flush()
        parent = org
    assert parent is not None
    return parent


async def find_org(session: AsyncSession, name_or_path: str) -> Org | None:
    """By full path, else by unique name (a name shared by two orgs returns None)."""
    org = (await session.execute(select(Org).where(Org.path == name_or_path))).scalar_one_or_none()
    if org is not None:
        return org
    rows = (await session.execute(select(Org).where(Org.name == name_or_path))).scalars().all()
    return rows[0] if len(rows) == 1 else None


async def subtree_ids(session: AsyncSession, org: Org) -> list[int]:
    rows = await session.execute(select(Org.id).where((Org.path == org.path) | Org.path.startswith(org.path + "/")))
    return [r for (r,) in rows.all()]


async def branches(session: AsyncSession, under: Org | None = None) -> list[Org]:
    stmt = select(Org).where(Org.kind == "branch").order_by(Org.path)
    if under is not None:
        stmt = stmt.where((Org.path == under.path) | Org.path.startswith(under.path + "/"))
    return list((await session.execute(stmt)).scalars().all())


async def get_org(session: AsyncSession, org_id: int) -> Org:
    org = await session.get(Org, org_id)
    if org is None:
        raise LookupError(f"org {org_id} not found")
    return org
