"""Queries behind the web pages: light list rows with repeat counts, the same failure elsewhere, dashboards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.store.models import DiagnosisRecord, FailureKind, Team
from app.store.repositories.diagnoses import DiagnosisFilters, Page, filter_conditions


@dataclass(frozen=True, slots=True)
class DiagnosisSummary:
    """What a list shows of one diagnosis; `repeats` is how often its team has seen this failure kind."""

    id: int
    received_at: datetime
    team: str
    job_id: str | None
    category: str
    stage: str
    step: int | None
    total_steps: int | None
    title: str
    fingerprint: str
    repeats: int
    project: str | None = None
    cluster: str | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class KindCount:
    """One failure kind of one team within a window: how often, when last, and its newest diagnosis."""

    team: str
    fingerprint: str
    category: str
    title: str
    count: int
    last_seen: datetime
    latest_id: int


_SUMMARY_COLUMNS = (
    DiagnosisRecord.id,
    DiagnosisRecord.received_at,
    Team.name.label("team"),
    DiagnosisRecord.job_id,
    DiagnosisRecord.category,
    DiagnosisRecord.stage,
    DiagnosisRecord.step,
    DiagnosisRecord.total_steps,
    DiagnosisRecord.title,
    DiagnosisRecord.fingerprint,
    func.coalesce(FailureKind.count, 1).label("repeats"),
    DiagnosisRecord.project,
    DiagnosisRecord.cluster,
    DiagnosisRecord.user,
)


def list_summaries(
    session: Session, filters: DiagnosisFilters, *, fingerprint: str | None, limit: int, offset: int
) -> Page[DiagnosisSummary]:
    """Matching diagnoses, newest first, without their full results (a list page never needs them)."""
    conditions = filter_conditions(filters)
    if fingerprint is not None:
        conditions.append(DiagnosisRecord.fingerprint == fingerprint)
    total = session.scalar(select(func.count()).select_from(DiagnosisRecord).where(*conditions))
    statement = (
        select(*_SUMMARY_COLUMNS)
        .select_from(DiagnosisRecord)
        .join(Team)
        .outerjoin(
            FailureKind,
            (FailureKind.team_id == DiagnosisRecord.team_id) & (FailureKind.fingerprint == DiagnosisRecord.fingerprint),
        )
        .where(*conditions)
        .order_by(DiagnosisRecord.received_at.desc(), DiagnosisRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    items = [DiagnosisSummary(**row._mapping) for row in session.execute(statement)]
    return Page(items=items, total=total or 0)


@dataclass(frozen=True, slots=True)
class DayTally:
    """How many matching diagnoses of one category died at one stage on one UTC day."""

    day: date
    category: str
    stage: str
    count: int


def tally_by_day_category_and_stage(session: Session, filters: DiagnosisFilters) -> list[DayTally]:
    """The matching diagnoses counted per day, category and stage: every dashboard chart from one scan."""
    day = func.date(DiagnosisRecord.received_at).label("day")
    statement = (
        select(day, DiagnosisRecord.category, DiagnosisRecord.stage, func.count().label("occurrences"))
        .select_from(DiagnosisRecord)
        .where(*filter_conditions(filters))
        .group_by(day, DiagnosisRecord.category, DiagnosisRecord.stage)
        .order_by(day)
    )
    return [DayTally(_as_date(row.day), row.category, row.stage, row.occurrences) for row in session.execute(statement)]


OriginGrouping = Literal["project", "cluster", "user"]
ORIGIN_GROUPINGS: tuple[OriginGrouping, ...] = ("project", "cluster", "user")
_ORIGIN_COLUMNS: dict[OriginGrouping, Any] = {
    "project": DiagnosisRecord.project,
    "cluster": DiagnosisRecord.cluster,
    "user": DiagnosisRecord.user,
}


@dataclass(frozen=True, slots=True)
class OriginTally:
    """How many matching diagnoses of one project, cluster or user (None: the run did not say) died of one
    category at one stage, and when the last did."""

    origin: str | None
    category: str
    stage: str
    count: int
    last_seen: datetime


def tally_by_origin(session: Session, filters: DiagnosisFilters, *, group_by: OriginGrouping) -> list[OriginTally]:
    """The matching diagnoses counted per project, cluster or user, category and stage, in one scan."""
    origin = _ORIGIN_COLUMNS[group_by].label("origin")
    statement = (
        select(origin, DiagnosisRecord.category, DiagnosisRecord.stage, func.count().label("occurrences"),
               func.max(DiagnosisRecord.received_at).label("last_seen"))
        .select_from(DiagnosisRecord)
        .where(*filter_conditions(filters))
        .group_by(origin, DiagnosisRecord.category, DiagnosisRecord.stage)
    )
    return [OriginTally(row.origin, row.category, row.stage, row.occurrences, row.last_seen)
            for row in session.execute(statement)]


def top_failure_kinds(session: Session, filters: DiagnosisFilters, *, limit: int) -> list[KindCount]:
    """The failure kinds seen most often among the matching diagnoses, with the newest of each."""
    latest_id = func.max(DiagnosisRecord.id).label("latest_id")
    occurrences = func.count().label("occurrences")
    groups = (
        select(
            DiagnosisRecord.fingerprint,
            latest_id,
            occurrences,
            func.max(DiagnosisRecord.received_at).label("last_seen"),
        )
        .select_from(DiagnosisRecord)
        .where(*filter_conditions(filters))
        .group_by(DiagnosisRecord.team_id, DiagnosisRecord.fingerprint)
        .order_by(occurrences.desc(), latest_id.desc())
        .limit(limit)
    )
    rows = session.execute(groups).all()
    latest = {
        row.id: row
        for row in session.execute(
            select(DiagnosisRecord.id, DiagnosisRecord.category, DiagnosisRecord.title, Team.name.label("team"))
            .join(Team)
            .where(DiagnosisRecord.id.in_([row.latest_id for row in rows]))
        )
    }
    return [
        KindCount(
            team=latest[row.latest_id].team,
            fingerprint=row.fingerprint,
            category=latest[row.latest_id].category,
            title=latest[row.latest_id].title,
            count=row.occurrences,
            last_seen=row.last_seen,
            latest_id=row.latest_id,
        )
        for row in rows
    ]


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def other_teams_with_kind(session: Session, *, fingerprint: str, team_id: int) -> tuple[int, int]:
    """How many other teams saw this failure kind, and how many times in all (only counts cross teams)."""
    teams_count, runs = session.execute(
        select(func.count(func.distinct(DiagnosisRecord.team_id)), func.count())
        .where(DiagnosisRecord.fingerprint == fingerprint, DiagnosisRecord.team_id != team_id)
    ).one()
    return int(teams_count or 0), int(runs or 0)


@dataclass(frozen=True, slots=True)
class UnknownCluster:
    """Diagnoses no signature named, grouped by the masked template of their last error line."""

    fingerprint: str
    count: int
    teams: int
    first_seen: datetime
    last_seen: datetime
    latest_id: int
    line: str  # the root line of the newest (its title when it has none)


def unknown_clusters(session: Session, filters: DiagnosisFilters, *, limit: int) -> list[UnknownCluster]:
    """The unknown failure kinds among the matching diagnoses, the most frequent first."""
    latest_id = func.max(DiagnosisRecord.id).label("latest_id")
    count = func.count().label("runs")
    rows = session.execute(
        select(DiagnosisRecord.fingerprint, count, func.count(func.distinct(DiagnosisRecord.team_id)).label("teams"),
               func.min(DiagnosisRecord.received_at).label("first_seen"),
               func.max(DiagnosisRecord.received_at).label("last_seen"), latest_id)
        .where(*filter_conditions(filters), DiagnosisRecord.category == "unknown")
        .group_by(DiagnosisRecord.fingerprint)
        .order_by(count.desc(), latest_id.desc())
        .limit(limit)
    ).all()
    latest_ids = [row.latest_id for row in rows]
    lines: dict[int, str] = {
        row.id: _root_line(row.result) or row.title
        for row in session.execute(
            select(DiagnosisRecord.id, DiagnosisRecord.title, DiagnosisRecord.result)
            .where(DiagnosisRecord.id.in_(latest_ids))
        )
    }
    return [UnknownCluster(row.fingerprint, int(row.runs), int(row.teams), row.first_seen, row.last_seen,
                           row.latest_id, lines.get(row.latest_id, "")) for row in rows]


def _root_line(result: dict[str, Any]) -> str | None:
    evidence = result.get("evidence") or []
    return str(evidence[0]["text"]) if evidence else None


def unknown_cluster_lines(
    session: Session, filters: DiagnosisFilters, *, fingerprint: str, limit: int = 5
) -> list[str]:
    """The root lines of an unknown failure kind's newest diagnoses (their first evidence line)."""
    results = session.scalars(
        select(DiagnosisRecord.result)
        .where(*filter_conditions(filters), DiagnosisRecord.fingerprint == fingerprint,
               DiagnosisRecord.category == "unknown")
        .order_by(DiagnosisRecord.id.desc()).limit(limit)
    )
    return [line for result in results if (line := _root_line(result))]
