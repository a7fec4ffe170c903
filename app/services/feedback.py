"""Feedback on a diagnosis from a person (the page, Slack, the API): checked, then stored."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.orm import Session

from app.diagnosis.taxonomy import categories
from app.errors import NotFoundError, TrainwreckError
from app.store.models import Feedback
from app.store.repositories import diagnoses
from app.store.repositories.feedback import add_feedback

Verdict = Literal["right", "wrong"]
MAX_AUTHOR_CHARS = 200


class InvalidFeedbackError(TrainwreckError):
    code = "invalid_feedback"
    status = 422


def record_feedback(
    session: Session, *, diagnosis_id: int, visible_team: str | None, verdict: str, category: str | None,
    parameter: str | None, author: str, source: str,
) -> Feedback:
    """Store what someone said: `right`, or `wrong` with the category it really was (and the setting that fixed
    it, when they know). 404 for a diagnosis the caller may not see."""
    if diagnoses.get_diagnosis(session, diagnosis_id, visible_team=visible_team) is None:
        raise NotFoundError(f"there is no diagnosis {diagnosis_id}")
    if verdict not in ("right", "wrong"):
        raise InvalidFeedbackError("verdict is `right` or `wrong`")
    category = (category or "").strip() or None
    parameter = (parameter or "").strip().lstrip("-")[:200] or None
    if verdict == "right":
        category = parameter = None
    elif category is None:
        raise InvalidFeedbackError("say what it was: a category of the taxonomy")
    if category is not None and category not in categories():
        raise InvalidFeedbackError(f"unknown category {category!r}")
    author = " ".join(author.split())[:MAX_AUTHOR_CHARS] or "someone"
    return add_feedback(session, diagnosis_id=diagnosis_id, verdict=verdict, category=category, parameter=parameter,
                        author=author, source=source)
