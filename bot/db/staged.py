"""Rows written late and together: one multi-row INSERT per table, before the session's next statement
or its commit, whichever comes first.

For the rows every answer writes (the answer, its revision, the reply in the outbox) an ORM object or a
single-row INSERT each costs a unit-of-work flush or a round trip per message, which was the largest share
of an answer's CPU. Staged, a group commit of 50 answers that reads nothing in between writes its 50
answers in one statement. Any other statement on the session writes the staged rows first, so a query
in the same transaction always sees them (read-your-writes, as with the ORM's autoflush). Rows go in in
the order they were staged, tables whose ids other staged rows refer to first; a rollback drops them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Insert, Table, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

_KEY = "staged_rows"


@dataclass(eq=False, slots=True)
class StagedRow:
    """A staged row; another staged row may hold it as a column value, meaning its id."""

    values: dict[str, Any]
    id: int | None = None  # known once inserted (``returns_id`` rows only)
    on_insert: Callable[[Session, int], None] | None = None  # then called with the session and the id


def stage(
    session: AsyncSession,
    table: Table,
    row: dict[str, Any],
    *,
    returns_id: bool = False,
    on_insert: Callable[[Session, int], None] | None = None,
) -> StagedRow:
    staged = StagedRow(row, on_insert=on_insert)
    session.sync_session.info.setdefault(_KEY, {}).setdefault((table, returns_id), []).append(staged)
    return staged


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_staged(session)


@event.listens_for(Session, "do_orm_execute")
def _before_statement(state: ORMExecuteState) -> None:
    if state.session.info.get(_KEY):
        write_staged(state.session)


def write_staged(session: Session) -> None:
    # Runs inside the AsyncSession's greenlet, so the sync execute below is the async driver underneath.
    # Popped first: the INSERTs below are statements on the session too.
    tables: dict[tuple[Table, bool], list[StagedRow]] = session.info.pop(_KEY, {})
    if not tables:
        return
    # On the session's connection, not through Session.execute: these are plain table INSERTs, and the
    # ORM's per-statement work (execution options, autoflush, events) cost more than the INSERT itself.
    connection = session.connection()
    for (table, returns_id), rows in sorted(tables.items(), key=lambda item: not item[0][1]):
        values = [_resolved(row.values) for row in rows]
        if not returns_id:
            connection.execute(_insert(table), values)
            continue
        for row, row_id in zip(rows, connection.execute(_insert_returning_id(table), values).scalars().all(), strict=True):
            row.id = int(row_id)
            if row.on_insert is not None:
                row.on_insert(session, row.id)


@cache
def _insert(table: Table) -> Insert:
    """Built once per table: building a statement and its cache key costs more than a small INSERT."""
    return insert(table)


@cache
def _insert_returning_id(table: Table) -> Insert:
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


def _resolved(values: dict[str, Any]) -> dict[str, Any]:
    if not any(isinstance(v, StagedRow) for v in values.values()):
        return values
    return {k: (v.id if isinstance(v, StagedRow) else v) for k, v in values.items()}


@event.listens_for(Session, "after_soft_rollback")
def _drop_staged(session: Session, previous: SessionTransaction) -> None:
    # Every rollback of the outer transaction, even one that never reached the database.
    if not previous.nested:
        session.info.pop(_KEY, None)
