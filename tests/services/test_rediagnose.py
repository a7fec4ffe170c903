"""Re-diagnosis: stored logs through the current signatures, results and failure kinds updated."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from server_support import oom_log
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.errors import NotFoundError
from app.services.ingest import IngestMeta, ingest_and_commit
from app.services.rediagnose import (
    RediagnosisReport,
    SignaturePreview,
    preview_newest,
    rediagnose_one,
    rediagnose_stored,
)
from app.store.models import DiagnosisRecord, FailureKind
from app.store.types import utc_now


def ingest_logs(
    session_factory: sessionmaker[Session], diagnoser: Diagnoser, settings: Settings, tmp_path: Path, count: int
) -> list[int]:
    created = []
    for number in range(count):
        path = tmp_path / f"log-{number}.log"
        path.write_bytes(oom_log(job=f"job-{number}"))
        result = ingest_and_commit(
            session_factory, log_path=path, meta=IngestMeta(team="vision"), diagnoser=diagnoser, settings=settings
        )
        created.append(result.diagnosis_id)
    return created


def test_rediagnosis_replaces_results_and_moves_failure_kinds(
    session_factory: sessionmaker[Session],
    diagnoser: Diagnoser,
    team_diagnoser: Diagnoser,
    store_settings: Settings,
    tmp_path: Path,
) -> None:
    ingest_logs(session_factory, diagnoser, store_settings, tmp_path, 3)

    report = rediagnose_stored(session_factory, diagnoser=team_diagnoser, settings=store_settings, batch_size=2)

    assert (report.processed, report.changed, report.failed) == (3, 3, 0)
    with session_factory() as session:
        records = session.scalars(select(DiagnosisRecord)).all()
        assert {(record.category, record.signature_set_version) for record in records} == {
            ("config_error", team_diagnoser.version)
        }
        assert {record.result["category"] for record in records} == {"config_error"}
        kinds = session.scalars(select(FailureKind)).all()
        assert [(kind.fingerprint, kind.count) for kind in kinds] == [(records[0].fingerprint, 3)]


def test_rediagnosis_since_a_date_leaves_older_logs_alone(
    session_factory: sessionmaker[Session],
    diagnoser: Diagnoser,
    team_diagnoser: Diagnoser,
    store_settings: Settings,
    tmp_path: Path,
) -> None:
    old, new = ingest_logs(session_factory, diagnoser, store_settings, tmp_path, 2)
    with session_factory.begin() as session:
        session.execute(
            update(DiagnosisRecord).where(DiagnosisRecord.id == old).values(received_at=utc_now() - timedelta(days=30))
        )

    report = rediagnose_stored(
        session_factory,
        diagnoser=team_diagnoser,
        settings=store_settings,
        received_since=utc_now() - timedelta(days=1),
    )

    assert report.processed == 1
    with session_factory() as session:
        categories = {record.id: record.category for record in session.scalars(select(DiagnosisRecord))}
    assert categories == {old: "gpu_oom", new: "config_error"}


def test_rediagnosing_one_diagnosis_is_scoped_to_the_team(
    session_factory: sessionmaker[Session],
    diagnoser: Diagnoser,
    team_diagnoser: Diagnoser,
    store_settings: Settings,
    tmp_path: Path,
) -> None:
    (diagnosis_id,) = ingest_logs(session_factory, diagnoser, store_settings, tmp_path, 1)

    with session_factory.begin() as session, pytest.raises(NotFoundError):
        rediagnose_one(session, diagnosis_id, visible_team="nlp", diagnoser=team_diagnoser, settings=store_settings)
    with session_factory.begin() as session:
        record = rediagnose_one(
            session, diagnosis_id, visible_team="vision", diagnoser=team_diagnoser, settings=store_settings
        )
        assert (record.category, record.signature_set_version) == ("config_error", team_diagnoser.version)


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql_share_one_run_without_overlap(
    session_factory: sessionmaker[Session],
    diagnoser: Diagnoser,
    team_diagnoser: Diagnoser,
    store_settings: Settings,
    tmp_path: Path,
) -> None:
    ingest_logs(session_factory, diagnoser, store_settings, tmp_path, 8)
    run_started = utc_now()
    reports: list[RediagnosisReport] = []

    def work(worker_diagnoser: Diagnoser) -> None:
        report = rediagnose_stored(
            session_factory,
            diagnoser=worker_diagnoser,
            settings=store_settings,
            diagnosed_before=run_started,
            batch_size=1,
        )
        reports.append(report)

    workers = [threading.Thread(target=work, args=(each,)) for each in (diagnoser, team_diagnoser)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sum(report.processed for report in reports) == 8
    assert all(report.processed > 0 for report in reports)


def test_a_preview_reads_the_newest_stale_diagnoses_within_its_budget_and_writes_nothing(
    session_factory: sessionmaker[Session],
    diagnoser: Diagnoser,
    team_diagnoser: Diagnoser,
    store_settings: Settings,
    tmp_path: Path,
) -> None:
    created = ingest_logs(session_factory, diagnoser, store_settings, tmp_path, 3)

    def preview(signatures: Diagnoser = team_diagnoser, *, team: str | None = None, limit: int = 10,
                budget_seconds: float = 60.0) -> SignaturePreview:
        return preview_newest(session_factory, visible_team=team, diagnoser=signatures, settings=store_settings,
                              limit=limit, budget_seconds=budget_seconds)

    whole = preview()
    assert (whole.stale, whole.checked, whole.failed, whole.unchecked) == (3, 3, 0, 0)
    assert [change.diagnosis_id for change in whole.changes] == created[::-1]  # newest first
    assert whole.changes[0].changes[0] == ("category", "gpu_oom", "config_error")

    rushed = preview(budget_seconds=0)  # one at least, however little time there is
    assert (rushed.checked, rushed.unchecked) == (1, 2)
    assert (preview(limit=2).checked, preview(limit=2).unchecked) == (2, 1)

    assert preview(team="nlp").stale == 0
    assert preview(diagnoser).stale == 0  # made with the set loaded now
    with session_factory() as session:
        assert set(session.scalars(select(DiagnosisRecord.category))) == {"gpu_oom"}
