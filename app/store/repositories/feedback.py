"""What people said about diagnoses, and how often each signature was right by their word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from app.store.models import DiagnosisRecord, Feedback
from app.store.repositories.diagnoses import DiagnosisFilters, filter_conditions


def add_feedback(
    session: Session, *, diagnosis_id: int, verdict: str, category: str | None, parameter: str | None, author: str,
    source: str,
) -> Feedback:
    feedback = Feedback(diagnosis_id=diagnosis_id, verdict=verdict, category=category, parameter=parameter,
                        author=author, source=source)
    session.add(feedback)
    session.flush()
    return feedback


def feedback_for(session: Session, diagnosis_id: int) -> Sequence[Feedback]:
    """Everything said about one diagnosis, oldest first."""
    return session.scalars(
        select(Feedback).where(Feedback.diagnosis_id == diagnosis_id).order_by(Feedback.created_at, Feedback.id)
    ).all()


@dataclass(frozen=True, slots=True)
class SignaturePrecision:
    """How a signature fared with the people who said: right, wrong, and the share right."""

    signature: str
    right: int
    wrong: int

    @property
    def precision(self) -> float:
        return self.right / (self.right + self.wrong) if self.right + self.wrong else 0.0


def latest_feedback() -> Subquery:
    """Each diagnosis's latest feedback id (`diagnosis_id`, `feedback_id`): a person's last word counts."""
    return (
        select(Feedback.diagnosis_id, func.max(Feedback.id).label("feedback_id"))
        .group_by(Feedback.diagnosis_id)
        .subquery()
    )


def precision_by_signature(session: Session, filters: DiagnosisFilters) -> list[SignaturePrecision]:
    """Per signature, the diagnoses people called right and wrong (each diagnosis counted by its latest word),
    the most corrected first."""
    latest = latest_feedback()
    right = func.sum(case((Feedback.verdict == "right", 1), else_=0))
    wrong = func.sum(case((Feedback.verdict == "wrong", 1), else_=0))
    rows = session.execute(
        select(func.coalesce(DiagnosisRecord.signature, "(no signature)"), right, wrong)
        .select_from(DiagnosisRecord)
        .join(latest, latest.c.diagnosis_id == DiagnosisRecord.id)
        .join(Feedback, Feedback.id == latest.c.feedback_id)
        .where(*filter_conditions(filters))
        .group_by(DiagnosisRecord.signature)
    ).all()
    found = [SignaturePrecision(signature=name, right=int(r or 0), wrong=int(w or 0)) for name, r, w in rows]
    return sorted(found, key=lambda item: (item.precision, -item.wrong, item.signature))
