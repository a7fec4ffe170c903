"""Counts of diagnoses for dashboards, grouped by category, stage, team, day, project, cluster or user."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.store.models import DiagnosisRecord, Team
from app.store.repositories.diagnoses import DiagnosisFilters, filter_conditions

StatsGrouping = Literal["category", "stage", "team", "day", "project", "cluster", "user"]

_GROUP_KEYS: dict[str, Any] = {
    "category": DiagnosisRecord.category,
    "stage": DiagnosisRecord.stage,
    "team": Team.name,
    "day": func.date(DiagnosisRecord.received_at),
    "project": func.coalesce(DiagnosisRecord.project, "(none)"),
    "cluster": func.coalesce(DiagnosisRecord.cluster, "(none)"),
    "user": func.coalesce(DiagnosisRecord.user, "(none)"),
}


def count_diagnoses_by(
    session: Session, filters: DiagnosisFilters, *, group_by: StatsGrouping
) -> list[tuple[str, int]]:
    """(key, count) pairs; days (UTC, YYYY-MM-DD) in date order, other keys most frequent first."""
    key = _GROUP_KEYS[group_by].label("key")
    count = func.count().label("count")
    statement = select(key, count).select_from(DiagnosisRecord).join(Team).where(*filter_conditions(filters))
    statement = statement.group_by(key)
    statement = statement.order_by(key) if group_by == "day" else statement.order_by(count.desc(), key)
    return [(str(group), int(number)) for group, number in session.execute(statement)]
