"""Queries on failure kinds: per team and fingerprint, first seen, last seen and count."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Executable, Table, delete, func, select
from sqlalchemy.orm import Session

from app.store.models import DiagnosisRecord, FailureKind
from app.store.upsert import built_per_dialect, dialect_insert, table_of


@built_per_dialect
def _count_occurrence(insert: Callable[[Table], Any]) -> Executable:
    table = table_of(FailureKind)
    statement = insert(table)
    return cast(Executable, statement.on_conflict_do_update(
        index_elements=[table.c.team_id, table.c.fingerprint],
        set_={"last_seen": statement.excluded.last_seen, "count": table.c.count + 1},
    ))


def record_occurrence(session: Session, *, team_id: int, fingerprint: str, seen_at: datetime) -> None:
    """Count one more diagnosis of this kind (atomic, so concurrent ingests do not lose counts)."""
    session.execute(_count_occurrence(session), {"team_id": team_id, "fingerprint": fingerprint,
                                                 "first_seen": seen_at, "last_seen": seen_at, "count": 1})


def recount(session: Session, *, team_id: int, fingerprint: str) -> None:
    """Rebuild one failure kind from its diagnoses (after a re-diagnosis moved some of them)."""
    first_seen, last_seen, count = session.execute(
        select(func.min(DiagnosisRecord.received_at), func.max(DiagnosisRecord.received_at), func.count()).where(
            DiagnosisRecord.team_id == team_id, DiagnosisRecord.fingerprint == fingerprint
        )
    ).one()
    key = (FailureKind.team_id == team_id, FailureKind.fingerprint == fingerprint)
    if not count:
        session.execute(delete(FailureKind).where(*key))
        return
    insert = dialect_insert(session, FailureKind).values(
        team_id=team_id, fingerprint=fingerprint, first_seen=first_seen, last_seen=last_seen, count=count
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[FailureKind.team_id, FailureKind.fingerprint],
            set_={"first_seen": first_seen, "last_seen": last_seen, "count": count},
        )
    )


def find_failure_kind(session: Session, *, team_id: int, fingerprint: str) -> FailureKind | None:
    """One failure kind, if any diagnosis of it exists."""
    return session.get(FailureKind, (team_id, fingerprint))
