"""Ingest: diagnose and store in one transaction; once per team and log; nothing half-written on failure."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import zstandard
from server_support import HF_TOKEN, oom_log, padded_log
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.errors import DiagnosisTimeoutError, UnreadableLogError
from app.services.ingest import IngestMeta, IngestResult, ingest_and_commit
from app.services.listeners import IngestListeners
from app.store.log_blobs import iter_log
from app.store.models import Base, DiagnosisRecord, FailureKind, LogChunk


def write(tmp_path: Path, data: bytes, name: str = "crash.log") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def ingest(
    session_factory: sessionmaker[Session],
    log_path: Path,
    *,
    diagnoser: Diagnoser,
    settings: Settings,
    listeners: IngestListeners | None = None,
    **meta: Any,
) -> IngestResult:
    return ingest_and_commit(
        session_factory,
        log_path=log_path,
        meta=IngestMeta(**meta),
        diagnoser=diagnoser,
        settings=settings,
        listeners=listeners,
    )


def row_counts(session_factory: sessionmaker[Session]) -> dict[str, int]:
    with session_factory() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def stored_log(session_factory: sessionmaker[Session], diagnosis_id: int) -> bytes:
    with session_factory() as session:
        return b"".join(iter_log(session, diagnosis_id))


def test_a_new_log_is_diagnosed_and_stored_with_its_metadata(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    log = oom_log()

    result = ingest(
        session_factory,
        write(tmp_path, log),
        diagnoser=diagnoser,
        settings=store_settings,
        team="vision",
        job_id="slurm-1",
        exit_code=1,
    )

    assert result.created
    assert result.diagnosis.category == "gpu_oom"
    with session_factory() as session:
        record = session.get(DiagnosisRecord, result.diagnosis_id)
        assert record is not None
        assert (record.team.name, record.job_id, record.exit_code, record.category) == (
            "vision",
            "slurm-1",
            1,
            "gpu_oom",
        )
        assert record.signature_set_version == diagnoser.version
        assert record.result["fingerprint"] == result.diagnosis.fingerprint
        kind = session.get(FailureKind, (record.team_id, record.fingerprint))
        assert kind is not None and kind.count == 1
    assert stored_log(session_factory, result.diagnosis_id) == log


def test_the_stored_log_has_its_secrets_redacted_and_keeps_its_lines(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    log = oom_log(secret=True)

    result = ingest(session_factory, write(tmp_path, log), diagnoser=diagnoser, settings=store_settings)

    stored = stored_log(session_factory, result.diagnosis_id)
    assert HF_TOKEN.encode() not in stored
    assert b"[REDACTED:" in stored
    assert stored.count(b"\n") == log.count(b"\n")


def test_the_same_log_again_returns_the_existing_diagnosis(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    log = oom_log()
    first = ingest(session_factory, write(tmp_path, log), diagnoser=diagnoser, settings=store_settings)

    gzipped = ingest(
        session_factory,
        write(tmp_path, gzip.compress(log), "crash.log.gz"),
        diagnoser=diagnoser,
        settings=store_settings,
    )
    zstd = zstandard.ZstdCompressor().compress(log)
    zstd_copy = ingest(session_factory, write(tmp_path, zstd, "c.zst"), diagnoser=diagnoser, settings=store_settings)

    assert (gzipped.created, zstd_copy.created) == (False, False)
    assert gzipped.diagnosis_id == zstd_copy.diagnosis_id == first.diagnosis_id
    assert gzipped.diagnosis.to_dict() == first.diagnosis.to_dict()
    counts = row_counts(session_factory)
    assert (counts["diagnoses"], counts["failure_kinds"]) == (1, 1)


def test_the_same_log_again_answers_with_the_first_submission_as_stored(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    first = ingest(session_factory, write(tmp_path, oom_log()), diagnoser=diagnoser, settings=store_settings,
                   team="vision", job_id="slurm-1")
    again = ingest(session_factory, write(tmp_path, oom_log()), diagnoser=diagnoser, settings=store_settings,
                   team="vision", job_id="slurm-2")

    assert not again.created
    assert (again.meta.job_id, again.received_at, again.log_bytes) == ("slurm-1", first.received_at, first.log_bytes)


def test_a_team_deleted_by_hand_fails_one_ingest_not_every_later_one(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    """The process remembers team ids; a store that loses a team behind its back is read again after a failure."""
    ingest(session_factory, write(tmp_path, oom_log(job="a")), diagnoser=diagnoser, settings=store_settings,
           team="vision")
    ingest(session_factory, write(tmp_path, oom_log(job="b")), diagnoser=diagnoser, settings=store_settings,
           team="vision")
    with session_factory.begin() as session:
        session.execute(text("DELETE FROM teams WHERE name = 'vision'"))

    with pytest.raises(IntegrityError):
        ingest(session_factory, write(tmp_path, oom_log(job="c")), diagnoser=diagnoser, settings=store_settings,
               team="vision")
    later = ingest(session_factory, write(tmp_path, oom_log(job="d")), diagnoser=diagnoser, settings=store_settings,
                   team="vision")

    assert later.created
    assert row_counts(session_factory)["diagnoses"] == 1


def test_the_same_log_from_another_team_is_a_new_diagnosis(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, oom_log())

    vision = ingest(session_factory, path, diagnoser=diagnoser, settings=store_settings, team="vision")
    nlp = ingest(session_factory, path, diagnoser=diagnoser, settings=store_settings, team="nlp")

    assert nlp.created and vision.created
    assert nlp.diagnosis_id != vision.diagnosis_id


def test_repeats_of_one_failure_count_towards_one_failure_kind(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    results = [
        ingest(session_factory, write(tmp_path, oom_log(job=f"job-{n}")), diagnoser=diagnoser, settings=store_settings)
        for n in range(3)
    ]

    assert len({result.diagnosis.fingerprint for result in results}) == 1
    with session_factory() as session:
        kinds = session.scalars(select(FailureKind)).all()
        assert [(kind.count, kind.first_seen <= kind.last_seen) for kind in kinds] == [(3, True)]


def test_two_copies_racing_store_one_diagnosis(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, padded_log(2 << 20))
    results: list[IngestResult] = []
    start = threading.Barrier(2)

    def send() -> None:
        start.wait()
        results.append(ingest(session_factory, path, diagnoser=diagnoser, settings=store_settings))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(result.created for result in results) == [False, True]
    assert results[0].diagnosis_id == results[1].diagnosis_id
    counts = row_counts(session_factory)
    assert (counts["diagnoses"], counts["failure_kinds"]) == (1, 1)
    assert stored_log(session_factory, results[0].diagnosis_id) == path.read_bytes()


@pytest.fixture
def failing_chunk_insert(db_engine: Engine) -> Iterator[None]:
    """The store breaks while the third chunk of a log is being written."""
    inserted = 0

    def break_third_chunk(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal inserted
        if statement.startswith("INSERT INTO log_chunks"):
            inserted += 1
            if inserted == 3:
                raise OperationalError(statement, {}, Exception("disk I/O error"))

    event.listen(db_engine, "before_cursor_execute", break_third_chunk)
    yield
    event.remove(db_engine, "before_cursor_execute", break_third_chunk)


@pytest.mark.usefixtures("failing_chunk_insert")
def test_a_store_failure_mid_ingest_leaves_no_rows(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, padded_log(4 << 20))

    with pytest.raises(OperationalError):
        ingest(session_factory, path, diagnoser=diagnoser, settings=store_settings, team="vision")

    assert set(row_counts(session_factory).values()) == {0}


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_killed_database_connection_mid_ingest_leaves_no_rows(
    db_engine: Engine,
    store_url: str,
    session_factory: sessionmaker[Session],
    diagnoser: Diagnoser,
    store_settings: Settings,
    tmp_path: Path,
) -> None:
    path = write(tmp_path, padded_log(4 << 20))
    inserted = 0
    admin_dsn = db_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def kill_own_backend(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal inserted
        if statement.startswith("INSERT INTO log_chunks"):
            inserted += 1
            if inserted == 3:
                backend = conn.connection.dbapi_connection.info.backend_pid
                with psycopg.connect(admin_dsn, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", [backend])

    event.listen(db_engine, "before_cursor_execute", kill_own_backend)
    try:
        with pytest.raises(OperationalError):
            ingest(session_factory, path, diagnoser=diagnoser, settings=store_settings, team="vision")
    finally:
        event.remove(db_engine, "before_cursor_execute", kill_own_backend)

    assert inserted == 3
    assert set(row_counts(session_factory).values()) == {0}
    with session_factory() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1  # the pool recovers


def test_a_diagnosis_past_the_deadline_stops_and_stores_nothing(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(diagnose_timeout_seconds=0.0)

    with pytest.raises(DiagnosisTimeoutError):
        ingest(session_factory, write(tmp_path, padded_log(9 << 20)), diagnoser=diagnoser, settings=settings)

    assert set(row_counts(session_factory).values()) == {0}


def test_an_unreadable_log_is_refused_before_anything_is_written(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    broken = gzip.compress(oom_log())[:-40]

    with pytest.raises(UnreadableLogError):
        ingest(session_factory, write(tmp_path, broken), diagnoser=diagnoser, settings=store_settings)

    assert set(row_counts(session_factory).values()) == {0}


def test_listeners_hear_of_new_diagnoses_once_committed(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    heard: list[tuple[int, int]] = []
    listeners = IngestListeners()

    def broken(_result: IngestResult) -> None:
        raise RuntimeError("webhook down")

    def count_rows(result: IngestResult) -> None:
        with session_factory() as session:
            heard.append((result.diagnosis_id, session.scalar(select(func.count()).select_from(LogChunk)) or 0))

    listeners.add(broken)
    listeners.add(count_rows)
    path = write(tmp_path, oom_log())

    first = ingest(session_factory, path, diagnoser=diagnoser, settings=store_settings, listeners=listeners)
    ingest(session_factory, path, diagnoser=diagnoser, settings=store_settings, listeners=listeners)

    assert heard == [(first.diagnosis_id, 1)]


class _PoolWatchingDiagnoser(Diagnoser):
    """The real diagnoser, noting how many pool connections are checked out while it reads the log."""

    def __init__(self, diagnoser: Diagnoser, engine: Engine) -> None:
        super().__init__(diagnoser.signature_set, frameworks=diagnoser.frameworks)
        self.engine = engine
        self.checked_out: list[int] = []

    def diagnose(self, source: Any, **kwargs: Any) -> Any:
        self.checked_out.append(self.engine.pool.checkedout())
        return super().diagnose(source, **kwargs)


def test_no_connection_is_held_while_the_log_is_diagnosed(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, store_settings: Settings, tmp_path: Path
) -> None:
    engine = session_factory.kw["bind"]
    watching = _PoolWatchingDiagnoser(diagnoser, engine)
    result = ingest(session_factory, write(tmp_path, oom_log()), diagnoser=watching, settings=store_settings,
                    team="vision")
    assert result.created
    assert watching.checked_out == [0]
