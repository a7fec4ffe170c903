"""Re-diagnosis: run stored logs through the current signatures and keep what they say now."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.diagnosis.model import Diagnosis
from app.errors import NotFoundError, TrainwreckError
from app.services.deadline import Deadline
from app.store.log_blobs import open_log
from app.store.models import DiagnosisRecord
from app.store.repositories import diagnoses, failure_kinds
from app.store.types import utc_now

logger = logging.getLogger(__name__)

BATCH_SIZE = 20


@dataclass(slots=True)
class RediagnosisReport:
    """What a re-diagnosis run did."""

    processed: int = 0
    changed: int = 0
    failed: int = 0


def rediagnose_record(session: Session, record: DiagnosisRecord, *, diagnoser: Diagnoser, settings: Settings) -> bool:
    """Diagnose the stored log again and replace the result; True when the category or fingerprint changed."""
    deadline = Deadline(settings.diagnose_timeout_seconds)
    with open_log(session, record.id) as log:
        diagnosis: Diagnosis = diagnoser.diagnose(log, exit_code=record.exit_code, progress=deadline.check)
    before = (record.category, record.fingerprint)
    diagnoses.replace_result(session, record, diagnosis, at=utc_now())
    if before[1] != diagnosis.fingerprint:
        failure_kinds.recount(session, team_id=record.team_id, fingerprint=before[1])
        failure_kinds.recount(session, team_id=record.team_id, fingerprint=diagnosis.fingerprint)
    return before != (diagnosis.category, diagnosis.fingerprint)


def rediagnose_one(
    session: Session, diagnosis_id: int, *, visible_team: str | None, diagnoser: Diagnoser, settings: Settings
) -> DiagnosisRecord:
    """Re-diagnose one diagnosis the caller may see; NotFoundError otherwise."""
    record = diagnoses.get_diagnosis(session, diagnosis_id, visible_team=visible_team)
    if record is None:
        raise NotFoundError(f"no diagnosis {diagnosis_id}")
    rediagnose_record(session, record, diagnoser=diagnoser, settings=settings)
    return record


def rediagnose_stored(
    session_factory: sessionmaker[Session],
    *,
    diagnoser: Diagnoser,
    settings: Settings,
    received_since: datetime | None = None,
    diagnosed_before: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[RediagnosisReport], None] | None = None,
) -> RediagnosisReport:
    """Re-diagnose every stored log (received since `received_since`) last diagnosed before
    `diagnosed_before` (default: when this run began).

    Works in committed batches. On PostgreSQL each batch is claimed with FOR UPDATE SKIP LOCKED, so
    the same command started on several replicas shares the work (a log is done twice at most when
    one replica finished it before another one started). SQLite runs the batches in turn. A log that
    fails is reported and skipped.
    """
    started = diagnosed_before or utc_now()
    report = RediagnosisReport()
    skipped: set[int] = set()
    while True:
        with session_factory.begin() as session:
            batch = diagnoses.claim_for_rediagnosis(
                session, diagnosed_before=started, received_since=received_since, limit=batch_size, exclude=skipped
            )
            if not batch:
                return report
            for record in batch:
                try:
                    report.changed += rediagnose_record(session, record, diagnoser=diagnoser, settings=settings)
                    report.processed += 1
                except TrainwreckError as error:
                    logger.warning("diagnosis %s could not be re-diagnosed: %s", record.id, error.message)
                    skipped.add(record.id)
                    report.failed += 1
        if on_batch is not None:
            on_batch(report)
