"""A team's labelled corpus: the diagnoses people confirmed or corrected, as logs and the `labels.jsonl` that
`trainwreck eval` reads, so a team measures the engine (and its own signatures) on its own failures."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import TrainwreckError
from app.store.log_blobs import iter_log
from app.store.models import DiagnosisRecord, Feedback, Team
from app.store.repositories.feedback import latest_feedback


def export_corpus(session: Session, *, team: str, since: datetime | None, out: Path) -> int:
    """Write every diagnosis of the team with feedback (its latest word) as `<id>.log` and a label; the count."""
    if out.exists() and any(out.iterdir()):
        raise TrainwreckError(f"{out} is not empty: give a new folder for the corpus")
    latest = latest_feedback()
    statement = (
        select(DiagnosisRecord, Feedback)
        .join(Team)
        .join(latest, latest.c.diagnosis_id == DiagnosisRecord.id)
        .join(Feedback, Feedback.id == latest.c.feedback_id)
        .where(Team.name == team)
        .order_by(DiagnosisRecord.id)
    )
    if since is not None:
        statement = statement.where(DiagnosisRecord.received_at >= since)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with (out / "labels.jsonl").open("w", encoding="utf-8") as labels:
        for record, feedback in session.execute(statement):
            name = f"{record.id}.log"
            with (out / name).open("wb") as log:
                for chunk in iter_log(session, record.id):
                    log.write(chunk)
            confirmed = feedback.verdict == "right"
            stored_remedies = [item["parameter"] for item in record.result.get("remedies", [])[:1]]
            label = {
                "id": f"{team}-{record.id}",
                "file": name,
                "category": record.category if confirmed else feedback.category,
                "stage": record.stage,
                "step": record.step,
                "remedy_params": ([feedback.parameter] if feedback.parameter else stored_remedies if confirmed else []),
                "exit_code": record.exit_code,
                "source": f"feedback: {feedback.verdict} by {feedback.author}",
            }
            labels.write(json.dumps(label) + "\n")
            count += 1
    return count
