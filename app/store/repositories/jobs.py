"""Queries on diagnoses by the job they came from."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import DiagnosisRecord, Team


def newest_diagnosis_of_job(session: Session, job_id: str, *, visible_team: str | None) -> DiagnosisRecord | None:
    """The newest diagnosis submitted with this job id, within the caller's scope (None: every team)."""
    statement = select(DiagnosisRecord).join(Team).where(DiagnosisRecord.job_id == job_id)
    if visible_team is not None:
        statement = statement.where(Team.name == visible_team)
    return session.scalar(statement.order_by(DiagnosisRecord.received_at.desc(), DiagnosisRecord.id.desc()).limit(1))
