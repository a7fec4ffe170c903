"""Queries on diagnoses: insert once per team and log, find, list with filters, group, claim for re-runs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, Executable, ScalarSelect, Table, bindparam, func, select, tuple_
from sqlalchemy.orm import Session

from app.diagnosis.model import Diagnosis
from app.store.models import DiagnosisRecord, FailureKind, Team
from app.store.repositories import log_text
from app.store.upsert import built_per_dialect, column_values, table_of

ItemT = TypeVar("ItemT")


@dataclass(frozen=True, slots=True)
class DiagnosisFilters:
    """What a list or count is restricted to; `visible_team` is the caller's scope (None: every team)."""

    visible_team: str | None = None
    team: str | None = None
    category: str | None = None
    stage: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    project: str | None = None
    cluster: str | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[ItemT]):
    items: list[ItemT]
    total: int


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Diagnoses of one team sharing a fingerprint: how many match the filters, the newest, all-time figures."""

    matching: int
    latest: DiagnosisRecord
    kind: FailureKind | None


def result_columns(diagnosis: Diagnosis, *, job_id: str | None) -> dict[str, Any]:
    """The columns that follow from a diagnosis (set at ingest, replaced by a re-diagnosis)."""
    searchable = [diagnosis.title, diagnosis.summary, job_id or "", *(item.text for item in diagnosis.evidence)]
    return {
        "category": diagnosis.category,
        "stage": diagnosis.stage,
        "step": diagnosis.step,
        "total_steps": diagnosis.total_steps,
        "signature": diagnosis.signature,
        "fingerprint": diagnosis.fingerprint,
        "title": diagnosis.title,
        "confidence": diagnosis.confidence,
        "signature_set_version": diagnosis.signature_set_version,
        "search_text": "\n".join(searchable).lower(),
        "result": diagnosis.to_dict(),
    }


_ID_BY_CONTENT = (
    select(DiagnosisRecord.id)
    .join(Team)
    .where(Team.name == bindparam("team_name"), DiagnosisRecord.content_sha256 == bindparam("content_sha256"))
)


def find_by_content(session: Session, *, team_name: str, content_sha256: str) -> DiagnosisRecord | None:
    """The diagnosis this team already has for a log with this hash: its id is looked for first, and the row
    loaded only when there is one (at an upload there almost never is)."""
    found = session.scalar(_ID_BY_CONTENT, {"team_name": team_name, "content_sha256": content_sha256})
    return session.get(DiagnosisRecord, found) if found is not None else None


@built_per_dialect
def _insert_if_new(insert: Callable[[Table], Any]) -> Executable:
    table = table_of(DiagnosisRecord)
    return cast(Executable, insert(table).on_conflict_do_nothing(
        index_elements=[table.c.team_id, table.c.content_sha256]
    ).returning(table.c.id))


def insert_if_new(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a diagnosis row and return its id; None when the team already has this log (a lost race)."""
    inserted: int | None = session.execute(_insert_if_new(session), column_values(DiagnosisRecord, values)).scalar()
    return inserted


def get_diagnosis(session: Session, diagnosis_id: int, *, visible_team: str | None) -> DiagnosisRecord | None:
    """One diagnosis, if it exists and the caller's scope may see it."""
    statement = select(DiagnosisRecord).join(Team).where(DiagnosisRecord.id == diagnosis_id)
    if visible_team is not None:
        statement = statement.where(Team.name == visible_team)
    return session.scalar(statement)


def list_diagnoses(session: Session, filters: DiagnosisFilters, *, limit: int, offset: int) -> Page[DiagnosisRecord]:
    """Diagnoses matching the filters, newest first, one page of them and the total."""
    conditions = filter_conditions(filters)
    total = session.scalar(select(func.count()).select_from(DiagnosisRecord).where(*conditions))
    statement = (
        select(DiagnosisRecord)
        .join(Team)
        .where(*conditions)
        .order_by(DiagnosisRecord.received_at.desc(), DiagnosisRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return Page(items=list(session.scalars(statement)), total=total or 0)


def list_failure_groups(session: Session, filters: DiagnosisFilters, *, limit: int, offset: int) -> Page[FailureGroup]:
    """Matching diagnoses grouped by team and fingerprint, the group seen most recently first."""
    latest_id = func.max(DiagnosisRecord.id).label("latest_id")
    last_received = func.max(DiagnosisRecord.received_at).label("last_received")
    matching = func.count().label("matching")
    groups = (
        select(DiagnosisRecord.team_id, DiagnosisRecord.fingerprint, latest_id, matching)
        .where(*filter_conditions(filters))
        .group_by(DiagnosisRecord.team_id, DiagnosisRecord.fingerprint)
    )
    total = session.scalar(select(func.count()).select_from(groups.subquery()))
    ordered = groups.add_columns(last_received).order_by(last_received.desc(), latest_id.desc())
    rows = session.execute(ordered.limit(limit).offset(offset)).all()
    if not rows:
        return Page(items=[], total=total or 0)
    latest = {
        record.id: record
        for record in session.scalars(
            select(DiagnosisRecord).where(DiagnosisRecord.id.in_([row.latest_id for row in rows]))
        )
    }
    kinds = {
        (kind.team_id, kind.fingerprint): kind
        for kind in session.scalars(
            select(FailureKind).where(
                tuple_(FailureKind.team_id, FailureKind.fingerprint).in_(
                    [(row.team_id, row.fingerprint) for row in rows]
                )
            )
        )
    }
    items = [
        FailureGroup(
            matching=row.matching, latest=latest[row.latest_id], kind=kinds.get((row.team_id, row.fingerprint))
        )
        for row in rows
    ]
    return Page(items=items, total=total or 0)


def filter_conditions(filters: DiagnosisFilters) -> list[ColumnElement[bool]]:
    """WHERE conditions for the filters; teams are matched by id, so no join is needed (nor in the way of
    index-only scans: counting a window of 10,000 rows through a join to teams is ~100× slower on SQLite)."""
    conditions: list[ColumnElement[bool]] = []
    if filters.visible_team is not None:
        conditions.append(DiagnosisRecord.team_id == _team_id(filters.visible_team))
    if filters.team is not None:
        conditions.append(DiagnosisRecord.team_id == _team_id(filters.team))
    if filters.category is not None:
        conditions.append(DiagnosisRecord.category == filters.category)
    if filters.stage is not None:
        conditions.append(DiagnosisRecord.stage == filters.stage)
    if filters.since is not None:
        conditions.append(DiagnosisRecord.received_at >= filters.since)
    if filters.until is not None:
        conditions.append(DiagnosisRecord.received_at < filters.until)
    for column, value in ((DiagnosisRecord.project, filters.project), (DiagnosisRecord.cluster, filters.cluster),
                          (DiagnosisRecord.user, filters.user)):
        if value is not None:
            conditions.append(column == value)
    if filters.text:  # the diagnosis's own text, or the stored log's lines
        conditions.append(
            DiagnosisRecord.search_text.contains(filters.text.lower(), autoescape=True)
            | log_text.log_holds(filters.text, DiagnosisRecord.id)
        )
    return conditions


def _team_id(name: str) -> ScalarSelect[int]:
    return select(Team.id).where(Team.name == name).scalar_subquery()


def claim_for_rediagnosis(
    session: Session,
    *,
    diagnosed_before: datetime,
    received_since: datetime | None,
    limit: int,
    exclude: Collection[int] = (),
) -> Sequence[DiagnosisRecord]:
    """A batch of diagnoses last produced before `diagnosed_before`; on PostgreSQL locked, skipping rows
    another worker holds, so several replicas can share one re-diagnosis run."""
    statement = (
        select(DiagnosisRecord)
        .where(DiagnosisRecord.diagnosed_at < diagnosed_before)
        .order_by(DiagnosisRecord.id)
        .limit(limit)
    )
    if received_since is not None:
        statement = statement.where(DiagnosisRecord.received_at >= received_since)
    if exclude:
        statement = statement.where(DiagnosisRecord.id.not_in(list(exclude)))
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True, of=DiagnosisRecord)
    return list(session.scalars(statement))


def page_after(
    session: Session, *, after_id: int, received_since: datetime | None, limit: int
) -> Sequence[DiagnosisRecord]:
    """The next diagnoses by id, for a pass that reads them all without claiming or changing any."""
    statement = select(DiagnosisRecord).where(DiagnosisRecord.id > after_id).order_by(DiagnosisRecord.id).limit(limit)
    if received_since is not None:
        statement = statement.where(DiagnosisRecord.received_at >= received_since)
    return list(session.scalars(statement))


def _made_with_other_signatures(filters: DiagnosisFilters, version: str) -> list[ColumnElement[bool]]:
    return [*filter_conditions(filters), DiagnosisRecord.signature_set_version != version]


def count_made_with_other_signatures(session: Session, filters: DiagnosisFilters, *, version: str) -> int:
    """How many matching diagnoses were made with a signature set other than `version`."""
    conditions = _made_with_other_signatures(filters, version)
    return session.scalar(select(func.count()).select_from(DiagnosisRecord).where(*conditions)) or 0


def newest_made_with_other_signatures(
    session: Session, filters: DiagnosisFilters, *, version: str, limit: int
) -> list[DiagnosisRecord]:
    """The newest matching diagnoses made with a signature set other than `version`."""
    statement = select(DiagnosisRecord).where(*_made_with_other_signatures(filters, version))
    return list(session.scalars(statement.order_by(DiagnosisRecord.id.desc()).limit(limit)))


def replace_result(session: Session, record: DiagnosisRecord, diagnosis: Diagnosis, *, at: datetime) -> None:
    """Store a new diagnosis of the same log in place of the old one."""
    for name, value in result_columns(diagnosis, job_id=record.job_id).items():
        setattr(record, name, value)
    record.diagnosed_at = at
    session.flush()
