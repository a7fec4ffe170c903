"""Diagnose a log and store it: the one path the API, the Slack bot and `trainwreck run` all use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.diagnosis.model import Diagnosis
from app.diagnosis.reader import iter_decompressed
from app.services.deadline import Deadline
from app.services.log_chunks import LogDigest, log_digest, redacted_chunks
from app.services.log_search import SearchableLines
from app.store.log_blobs import CompressedLog, compressed_log, write_log
from app.store.models import DiagnosisRecord
from app.store.repositories import diagnoses, failure_kinds, log_text, teams
from app.store.session import write_transaction
from app.store.types import utc_now

if TYPE_CHECKING:
    from app.services.listeners import IngestListeners

DEFAULT_TEAM = "default"


@dataclass(frozen=True, slots=True)
class IngestMeta:
    """Who sent a log and about which job; every field but `team` is optional."""

    team: str = DEFAULT_TEAM
    job_id: str | None = None
    project: str | None = None
    cluster: str | None = None
    user: str | None = None
    exit_code: int | None = None
    filename: str | None = None
    source: str = "api"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """The stored diagnosis as stored: `created` is False when the team had already sent this very log, and the
    diagnosis, its metadata and times are then those of the first time."""

    diagnosis_id: int
    created: bool
    diagnosis: Diagnosis
    meta: IngestMeta
    received_at: datetime
    diagnosed_at: datetime
    log_bytes: int = 0
    diagnose_seconds: float = 0.0


def _store(
    session: Session, *, meta: IngestMeta, digest: LogDigest, diagnosis: Diagnosis, stored_log: CompressedLog,
    search_blocks: list[tuple[int, str]], now: datetime,
) -> int | None:
    """Write the diagnosis, its log and its failure kind; None when the team already has this log."""
    team_id = teams.ensure_team_id(session, meta.team)
    diagnosis_id = diagnoses.insert_if_new(
        session,
        {
            "team_id": team_id,
            "job_id": meta.job_id,
            "project": meta.project,
            "cluster": meta.cluster,
            "user": meta.user,
            "exit_code": meta.exit_code,
            "filename": meta.filename,
            "source": meta.source,
            "received_at": now,
            "diagnosed_at": now,
            "content_sha256": digest.sha256,
            "log_bytes": digest.size,
            **diagnoses.result_columns(diagnosis, job_id=meta.job_id),
        },
    )
    if diagnosis_id is None:
        return None
    write_log(session, diagnosis_id, stored_log)
    log_text.insert_blocks(session, [(diagnosis_id, first, lines) for first, lines in search_blocks])
    failure_kinds.record_occurrence(session, team_id=team_id, fingerprint=diagnosis.fingerprint, seen_at=now)
    session.flush()
    return diagnosis_id


def ingest_and_commit(
    session_factory: sessionmaker[Session],
    *,
    log_path: Path,
    meta: IngestMeta,
    diagnoser: Diagnoser,
    settings: Settings,
    listeners: IngestListeners | None = None,
) -> IngestResult:
    """Diagnose the log at `log_path`, store the diagnosis, the redacted log and its failure kind in one
    committed transaction, then tell the listeners about a new diagnosis.

    The diagnosis and the compression happen before the transaction opens, so no database connection sits
    idle in a transaction while a big log is read. The same log (same decompressed bytes) from the same team
    returns the existing diagnosis, also when two copies race. Raises UnreadableLogError, LogTooLargeError
    or DiagnosisTimeoutError (past settings.diagnose_timeout_seconds for the whole ingest); nothing is
    stored then. What a background task (the Slack bot) or a worker thread (the API) calls.
    """
    deadline = Deadline(settings.diagnose_timeout_seconds)
    digest = log_digest(deadline.watch(_decompressed(log_path, settings)))
    with session_factory() as session:  # a short read of its own, closed before the long work
        existing = diagnoses.find_by_content(session, team_name=meta.team, content_sha256=digest.sha256)
        if existing is not None:
            return _existing(existing)
    started = time.monotonic()
    diagnosis = diagnoser.diagnose(log_path, exit_code=meta.exit_code, progress=deadline.check)
    diagnose_seconds = time.monotonic() - started
    searchable = SearchableLines()
    redacted = map(searchable.feed, redacted_chunks(deadline.watch(_decompressed(log_path, settings))))
    with compressed_log(redacted) as stored_log:
        # gathered before the transaction: SQLite's write lock is held from the first insert to the commit
        search_blocks = searchable.blocks([(item.line, item.text) for item in diagnosis.evidence])
        now = utc_now()
        with write_transaction(session_factory) as session, _forgetting_team_ids_on_failure(session):
            diagnosis_id = _store(session, meta=meta, digest=digest, diagnosis=diagnosis, stored_log=stored_log,
                                  search_blocks=search_blocks, now=now)
            if diagnosis_id is None:
                raced = diagnoses.find_by_content(session, team_name=meta.team, content_sha256=digest.sha256)
                assert raced is not None, "the insert conflicted, so the other row exists"
                return _existing(raced)
    result = IngestResult(
        diagnosis_id=diagnosis_id,
        created=True,
        diagnosis=diagnosis,
        meta=meta,
        received_at=now,
        diagnosed_at=now,
        log_bytes=digest.size,
        diagnose_seconds=diagnose_seconds,
    )
    if listeners is not None:
        listeners.notify(result)
    return result


@contextmanager
def _forgetting_team_ids_on_failure(session: Session) -> Iterator[None]:
    """A store that lost a team (deleted by hand) fails one ingest, not every later one."""
    try:
        yield
    except IntegrityError:
        teams.forget_team_ids(session)
        raise


def _existing(record: DiagnosisRecord) -> IngestResult:
    meta = IngestMeta(team=record.team.name, job_id=record.job_id, project=record.project, cluster=record.cluster,
                      user=record.user, exit_code=record.exit_code, filename=record.filename, source=record.source)
    return IngestResult(
        diagnosis_id=record.id,
        created=False,
        diagnosis=Diagnosis.from_dict(record.result),
        meta=meta,
        received_at=record.received_at,
        diagnosed_at=record.diagnosed_at,
        log_bytes=record.log_bytes,
    )


def _decompressed(log_path: Path, settings: Settings) -> Iterator[bytes]:
    return iter_decompressed(log_path, max_bytes=settings.max_decompressed_bytes)
