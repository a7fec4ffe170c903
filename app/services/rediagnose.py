"""Re-diagnosis: run stored logs through the current signatures and keep what they say now."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.diagnosis.model import Diagnosis
from app.errors import NotFoundError, TrainwreckError
from app.services.deadline import Deadline
from app.store.log_blobs import open_log
from app.store.models import DiagnosisRecord
from app.store.repositories import diagnoses, failure_kinds
from app.store.repositories.diagnoses import DiagnosisFilters
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


@dataclass(frozen=True, slots=True)
class PreviewedChange:
    """How one stored diagnosis would change with the current signatures."""

    diagnosis_id: int
    team: str
    title: str  # as stored
    changes: list[tuple[str, str, str]]  # (what, before, after): category, stage, remedies


def _remedy_names(result: dict[str, Any]) -> str:
    remedies = result.get("remedies") or []
    return ", ".join(str(item.get("parameter")) for item in remedies if isinstance(item, dict)) or "—"


def _preview_record(session: Session, record: DiagnosisRecord, *, diagnoser: Diagnoser,
                   settings: Settings) -> tuple[bool, PreviewedChange | None]:
    """Whether the stored log could be diagnosed again (why not is logged), and how the current signatures
    would change its diagnosis (None: not at all); nothing written."""
    deadline = Deadline(settings.diagnose_timeout_seconds)
    try:
        with open_log(session, record.id) as log:
            now = diagnoser.diagnose(log, exit_code=record.exit_code, progress=deadline.check).to_dict()
    except TrainwreckError as error:
        logger.warning("diagnosis %s could not be re-diagnosed: %s", record.id, error.message)
        return False, None
    stored = record.result
    differences = [
        (what, before, after)
        for what, before, after in (
            ("category", str(stored.get("category")), str(now["category"])),
            ("stage", str(stored.get("stage")), str(now["stage"])),
            ("remedies", _remedy_names(stored), _remedy_names(now)),
        )
        if before != after
    ]
    return True, PreviewedChange(record.id, record.team.name, record.title, differences) if differences else None


def preview_rediagnosis(
    session_factory: sessionmaker[Session],
    *,
    diagnoser: Diagnoser,
    settings: Settings,
    received_since: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> tuple[RediagnosisReport, list[PreviewedChange]]:
    """What `rediagnose` would change, and nothing rewritten: every stored log diagnosed again in read-only
    passes, its category, stage and remedies compared with what is stored."""
    report = RediagnosisReport()
    changed: list[PreviewedChange] = []
    after = 0
    while True:
        with session_factory() as session:
            batch = diagnoses.page_after(session, after_id=after, received_since=received_since, limit=batch_size)
            if not batch:
                return report, changed
            for record in batch:
                after = record.id
                read, change = _preview_record(session, record, diagnoser=diagnoser, settings=settings)
                if not read:
                    report.failed += 1
                    continue
                report.processed += 1
                if change is not None:
                    report.changed += 1
                    changed.append(change)


@dataclass(slots=True)
class SignaturePreview:
    """What the signature set loaded now would change among the newest diagnoses made with another one."""

    version: str
    stale: int = 0  # diagnoses (the viewer may see) made with another signature set
    checked: int = 0
    failed: int = 0
    changes: list[PreviewedChange] = field(default_factory=list)

    @property
    def unchecked(self) -> int:
        """Stale diagnoses this preview did not get to (the command line reads them all)."""
        return self.stale - self.checked - self.failed


def preview_newest(
    session_factory: sessionmaker[Session],
    *,
    visible_team: str | None,
    diagnoser: Diagnoser,
    settings: Settings,
    limit: int,
    budget_seconds: float,
) -> SignaturePreview:
    """The newest `limit` stale diagnoses diagnosed again, read-only, until `budget_seconds` are spent: a
    page's worth, answered in seconds; `trainwreck rediagnose --all --dry-run` reads every one."""
    preview = SignaturePreview(diagnoser.version)
    started = time.monotonic()
    filters = DiagnosisFilters(visible_team=visible_team)
    with session_factory() as session:
        preview.stale = diagnoses.count_made_with_other_signatures(session, filters, version=diagnoser.version)
        for record in diagnoses.newest_made_with_other_signatures(session, filters, version=diagnoser.version,
                                                                  limit=limit):
            if preview.checked + preview.failed and time.monotonic() - started > budget_seconds:
                break  # one at least, however slow
            read, change = _preview_record(session, record, diagnoser=diagnoser, settings=settings)
            if not read:
                preview.failed += 1
                continue
            preview.checked += 1
            if change is not None:
                preview.changes.append(change)
    return preview


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
