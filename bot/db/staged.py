"""Rows written once, when their transaction commits: one multi-row INSERT per table.

For rows nothing reads back inside the transaction that writes them (outbox messages, answer revisions):
an ORM object each costs a unit-of-work flush per message, which was the largest share of an answer's
CPU; staged, a group commit of 20 answers writes its 20 outbox rows in one statement. Staged rows go in
before the session's final flush, in the order they were staged; a rollback drops them with the rest.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "staged_rows"


def stage(session: AsyncSession, table: Table, row: dict[str, Any]) -> None:
    session.sync_session.info.setdefault(_KEY, {}).setdefault(table, []).append(row)


@event.listens_for(Session, "before_commit")
def _write_staged(session: Session) -> None:
    # Runs inside the AsyncSession's greenlet, so the sync execute below is the async driver underneath.
    tables: dict[Table, list[dict[str, Any]]] = session.info.pop(_KEY, {})
    for table, rows in tables.items():
        session.execute(insert(table), rows)


@event.listens_for(Session, "after_soft_rollback")
def _drop_staged(session: Session, previous: SessionTransaction) -> None:
    # Every rollback of the outer transaction, even one that never reached the database.
    if not previous.nested:
        session.info.pop(_KEY, None)
