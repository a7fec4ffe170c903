"""Big uploads diagnosed in the background: 202 Accepted at once, a status URL to follow, the diagnosis later.

On the embedded SQLite store a job runs in the process that accepted the upload, in its lane for big logs.
On PostgreSQL it goes through a task queue in the same database (procrastinate), which the worker of every
replica takes jobs from; the log waits in settings.job_log_dir, which those replicas must share.
Either way the job's own row (`ingest_jobs`) says how it stands, team by team.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.errors import TrainwreckError
from app.services.ingest import IngestMeta, ingest_and_commit
from app.services.listeners import IngestListeners
from app.store.models import IngestJob
from app.store.repositories import teams
from app.store.types import utc_now

logger = logging.getLogger(__name__)
QUEUE = "trainwreck-diagnose"
RESTARTED_MESSAGE = "the server stopped before it diagnosed this log; send it again"


def process_owner() -> str:
    """This process as a job's owner: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_gone(owner: str) -> bool:
    """Whether the process named by `owner` (process_owner() of some process) is of this host and has ended; a
    process of another host is never judged gone here."""
    owner_host, _, pid = owner.rpartition(":")
    return owner_host == socket.gethostname() and not (pid.isdigit() and _alive(int(pid)))


def queue_job(session_factory: sessionmaker[Session], *, upload: Path, meta: IngestMeta, settings: Settings) -> str:
    """Move the spooled upload where jobs wait and record the job, queued; its id."""
    job_id = uuid.uuid4().hex
    settings.job_log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.job_log_dir / f"{job_id}.log"
    size = upload.stat().st_size
    os.replace(upload, log_path)
    try:
        with session_factory.begin() as session:
            team = teams.ensure_team(session, meta.team)
            session.add(IngestJob(id=job_id, team_id=team.id, status="queued", meta=asdict(meta),
                                  log_path=str(log_path), log_bytes=size, owner=process_owner()))
    except BaseException:
        log_path.unlink(missing_ok=True)
        raise
    return job_id


def run_job(
    session_factory: sessionmaker[Session], job_id: str, *, diagnoser: Diagnoser, settings: Settings,
    listeners: IngestListeners | None = None,
) -> None:
    """Diagnose and store a queued job's log, then record how it ended; a job not queued any more is left be
    (a queue may deliver a job twice). The waiting log is deleted either way."""
    with session_factory.begin() as session:
        job = session.get(IngestJob, job_id, with_for_update=True)
        if job is None or job.status != "queued":
            return
        job.status, job.started_at = "running", utc_now()
        log_path, meta = Path(job.log_path), IngestMeta(**job.meta)
    outcome: dict[str, object]
    try:
        result = ingest_and_commit(session_factory, log_path=log_path, meta=meta, diagnoser=diagnoser,
                                   settings=settings, listeners=listeners)
        outcome = {"status": "done", "diagnosis_id": result.diagnosis_id, "created": result.created}
    except TrainwreckError as error:
        outcome = {"status": "failed", "error_code": error.code, "error_message": error.message}
    except Exception:
        logger.exception("background diagnosis %s failed", job_id)
        outcome = {"status": "failed", "error_code": "internal_error", "error_message": "the diagnosis failed"}
    finally:
        log_path.unlink(missing_ok=True)
    with session_factory.begin() as session:
        job = session.get(IngestJob, job_id)
        if job is not None:
            for name, value in outcome.items():
                setattr(job, name, value)
            job.finished_at = utc_now()


def fail_orphaned_jobs(session_factory: sessionmaker[Session]) -> int:
    """Jobs that a process of this host queued and that died with it: failed, their logs deleted. For the
    embedded store, whose jobs run in the process that took them; how many there were."""
    failed = 0
    with session_factory.begin() as session:
        waiting = session.scalars(select(IngestJob).where(IngestJob.status.in_(("queued", "running")))).all()
        for job in waiting:
            if not owner_gone(job.owner):
                continue
            _fail(job, "server_restarted", RESTARTED_MESSAGE)
            failed += 1
    return failed


def fail_abandoned_job(session_factory: sessionmaker[Session], job_id: str) -> bool:
    """A job whose worker died with it unfinished (the queue saw its heartbeat stop): failed as a restart
    fails them on the embedded store, its log deleted; False when it had ended after all."""
    with session_factory.begin() as session:
        job = session.get(IngestJob, job_id, with_for_update=True)
        if job is None or job.status not in ("queued", "running"):
            return False
        _fail(job, "server_restarted", RESTARTED_MESSAGE)
        return True


def fail_job(session_factory: sessionmaker[Session], job_id: str, error: TrainwreckError) -> None:
    """A job that cannot run (its queue refused it): failed with the reason, its log deleted."""
    with session_factory.begin() as session:
        job = session.get(IngestJob, job_id)
        if job is not None:
            _fail(job, error.code, error.message)


def _fail(job: IngestJob, code: str, message: str) -> None:
    Path(job.log_path).unlink(missing_ok=True)
    job.status, job.error_code, job.error_message, job.finished_at = "failed", code, message, utc_now()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_for_team(session: Session, job_id: str, *, visible_team: str | None) -> IngestJob | None:
    """The job, if the caller may see it (None: every team)."""
    job = session.get(IngestJob, job_id)
    if job is None or (visible_team is not None and job.team.name != visible_team):
        return None
    return job
