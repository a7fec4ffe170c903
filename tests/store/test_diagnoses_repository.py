"""Diagnosis queries: insert once per team and log, filters, pages, groups, stats, claims for re-runs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.diagnosis.model import Diagnosis, Evidence
from app.store.repositories import diagnoses, failure_kinds, teams
from app.store.repositories.diagnoses import DiagnosisFilters
from app.store.repositories.stats import count_diagnoses_by

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def add(
    session: Session,
    *,
    team: str = "vision",
    category: str = "gpu_oom",
    stage: str = "mid_run",
    fingerprint: str = "fp-oom",
    title: str = "CUDA out of memory",
    evidence: str = "torch.OutOfMemoryError: CUDA out of memory",
    job_id: str | None = None,
    at: datetime = START,
    content: str | None = None,
) -> int:
    """Insert one diagnosis row (and count its failure kind) the way ingest does."""
    record_team = teams.ensure_team(session, team)
    diagnosis = Diagnosis(
        category=category,
        stage=stage,
        step=10,
        total_steps=100,
        signature="sig",
        title=title,
        summary="summary",
        confidence=0.9,
        evidence=[Evidence(line=3, text=evidence)],
        fingerprint=fingerprint,
        signature_set_version="v1",
    )
    digest = hashlib.sha256((content or f"{team}{title}{at}{job_id}{fingerprint}").encode()).hexdigest()
    diagnosis_id = diagnoses.insert_if_new(
        session,
        {
            "team_id": record_team.id,
            "job_id": job_id,
            "source": "api",
            "received_at": at,
            "diagnosed_at": at,
            "content_sha256": digest,
            "log_bytes": 100,
            **diagnoses.result_columns(diagnosis, job_id=job_id),
        },
    )
    assert diagnosis_id is not None
    failure_kinds.record_occurrence(session, team_id=record_team.id, fingerprint=fingerprint, seen_at=at)
    session.commit()
    return diagnosis_id


def ids(page: diagnoses.Page[diagnoses.DiagnosisRecord]) -> list[int]:
    return [record.id for record in page.items]


def test_the_same_log_is_inserted_once_per_team(session: Session) -> None:
    first = add(session, content="same log")

    team = teams.ensure_team(session, "vision")
    again = diagnoses.insert_if_new(
        session,
        {
            "team_id": team.id,
            "source": "api",
            "content_sha256": hashlib.sha256(b"same log").hexdigest(),
            "log_bytes": 1,
            **diagnoses.result_columns(Diagnosis("unknown", "unknown", None, None, None, "t", "s", 0.1), job_id=None),
        },
    )
    other_team = add(session, team="nlp", content="same log")

    assert again is None
    assert other_team != first


def test_every_attribute_given_is_stored_and_an_unknown_one_refused(session: Session) -> None:
    """The insert is a Core statement, which takes column names (`user` is stored in `username`) and would drop
    a key that names no column."""
    team = teams.ensure_team(session, "vision")
    values = {
        "team_id": team.id, "job_id": "job-7", "project": "llm", "cluster": "east", "user": "ana", "exit_code": 137,
        "filename": "train.log", "source": "cli", "received_at": START, "diagnosed_at": START + timedelta(seconds=3),
        "content_sha256": "c" * 64, "log_bytes": 12,
        **diagnoses.result_columns(Diagnosis("gpu_oom", "mid_run", 5, 9, "sig", "t", "s", 0.7), job_id="job-7"),
    }
    diagnosis_id = diagnoses.insert_if_new(session, values)
    record = session.get(diagnoses.DiagnosisRecord, diagnosis_id)
    assert record is not None
    assert {name: getattr(record, name) for name in values} == values

    with pytest.raises(KeyError, match="usr"):
        diagnoses.insert_if_new(session, values | {"content_sha256": "d" * 64, "usr": "bo"})


def test_list_is_newest_first_with_total_and_pages(session: Session) -> None:
    created = [add(session, at=START + timedelta(minutes=minute)) for minute in range(5)]

    first_page = diagnoses.list_diagnoses(session, DiagnosisFilters(), limit=2, offset=0)
    last_page = diagnoses.list_diagnoses(session, DiagnosisFilters(), limit=2, offset=4)

    assert ids(first_page) == created[::-1][:2]
    assert ids(last_page) == [created[0]]
    assert first_page.total == last_page.total == 5


def test_list_filters_by_team_category_stage_and_time(session: Session) -> None:
    oom = add(session, at=START)
    nan = add(session, category="nan_loss", stage="early", fingerprint="fp-nan", at=START + timedelta(days=1))
    other_team = add(session, team="nlp", at=START + timedelta(days=2))

    def listed(**filters: object) -> list[int]:
        return ids(diagnoses.list_diagnoses(session, DiagnosisFilters(**filters), limit=50, offset=0))  # type: ignore[arg-type]

    assert listed(team="vision") == [nan, oom]
    assert listed(category="gpu_oom") == [other_team, oom]
    assert listed(stage="early") == [nan]
    assert listed(since=START + timedelta(hours=1)) == [other_team, nan]
    assert listed(until=START + timedelta(days=1)) == [oom]
    assert listed(visible_team="nlp") == [other_team]
    assert listed(visible_team="nlp", team="vision") == []


def test_free_text_searches_title_evidence_and_job_id_literally(session: Session) -> None:
    by_title = add(session, title="NCCL watchdog timeout", fingerprint="a")
    by_evidence = add(session, evidence="Bus error (core dumped) in worker 3", fingerprint="b")
    by_job = add(session, job_id="slurm-77_100%", fingerprint="c")

    def found(text: str) -> list[int]:
        return ids(diagnoses.list_diagnoses(session, DiagnosisFilters(text=text), limit=50, offset=0))

    assert found("watchdog") == [by_title]
    assert found("BUS ERROR") == [by_evidence]
    assert found("77_100%") == [by_job]
    assert found("7_1") == [by_job]
    assert found("%") == [by_job]  # wildcards are plain characters


def test_another_teams_diagnosis_is_invisible_by_id(session: Session) -> None:
    theirs = add(session, team="nlp")

    assert diagnoses.get_diagnosis(session, theirs, visible_team="vision") is None
    assert diagnoses.get_diagnosis(session, theirs, visible_team="nlp") is not None
    assert diagnoses.get_diagnosis(session, theirs, visible_team=None) is not None


def test_groups_by_fingerprint_with_all_time_figures(session: Session) -> None:
    add(session, fingerprint="fp-oom", at=START)
    newest_oom = add(session, fingerprint="fp-oom", at=START + timedelta(days=3))
    nan = add(session, category="nan_loss", fingerprint="fp-nan", at=START + timedelta(days=1))

    page = diagnoses.list_failure_groups(session, DiagnosisFilters(), limit=10, offset=0)
    since_day_two = DiagnosisFilters(since=START + timedelta(days=2))
    recent = diagnoses.list_failure_groups(session, since_day_two, limit=10, offset=0)

    assert [group.latest.id for group in page.items] == [newest_oom, nan]
    oom_group = page.items[0]
    assert oom_group.matching == 2
    assert oom_group.kind is not None
    assert (oom_group.kind.count, oom_group.kind.first_seen, oom_group.kind.last_seen) == (
        2,
        START,
        START + timedelta(days=3),
    )
    assert page.total == 2
    assert [(group.matching, group.kind.count if group.kind else 0) for group in recent.items] == [(1, 2)]


def test_timestamps_read_back_aware_in_utc(session: Session) -> None:
    moment = datetime(2025, 6, 1, 14, 30, tzinfo=UTC) + timedelta(microseconds=123)
    diagnosis_id = add(session, at=moment.astimezone(ZoneInfo("Asia/Tokyo")))
    session.expire_all()

    record = diagnoses.get_diagnosis(session, diagnosis_id, visible_team=None)

    assert record is not None
    assert record.received_at == moment
    assert record.received_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("category", [("gpu_oom", 2), ("nan_loss", 1)]),
        ("stage", [("mid_run", 2), ("early", 1)]),
        ("team", [("vision", 2), ("nlp", 1)]),
        ("day", [("2025-03-01", 2), ("2025-03-02", 1)]),
    ],
)
def test_stats_count_by_each_grouping(session: Session, group_by: str, expected: list[tuple[str, int]]) -> None:
    add(session, at=START)
    add(session, team="nlp", at=START + timedelta(hours=11, minutes=59))
    add(session, category="nan_loss", stage="early", fingerprint="n", at=START + timedelta(hours=12))

    assert count_diagnoses_by(session, DiagnosisFilters(), group_by=group_by) == expected  # type: ignore[arg-type]


def test_stats_respect_the_callers_team(session: Session) -> None:
    add(session)
    add(session, team="nlp")

    assert count_diagnoses_by(session, DiagnosisFilters(visible_team="nlp"), group_by="team") == [("nlp", 1)]


def test_recount_rebuilds_a_failure_kind_and_drops_an_empty_one(session: Session) -> None:
    first = add(session, fingerprint="old", at=START)
    add(session, fingerprint="old", at=START + timedelta(days=1))
    record = diagnoses.get_diagnosis(session, first, visible_team=None)
    assert record is not None
    record.fingerprint = "new"
    session.flush()

    failure_kinds.recount(session, team_id=record.team_id, fingerprint="old")
    failure_kinds.recount(session, team_id=record.team_id, fingerprint="new")
    session.commit()

    old = failure_kinds.find_failure_kind(session, team_id=record.team_id, fingerprint="old")
    new = failure_kinds.find_failure_kind(session, team_id=record.team_id, fingerprint="new")
    assert old is not None and (old.count, old.first_seen) == (1, START + timedelta(days=1))
    assert new is not None and (new.count, new.first_seen, new.last_seen) == (1, START, START)
    record.fingerprint = "gone"
    session.flush()
    failure_kinds.recount(session, team_id=record.team_id, fingerprint="new")
    assert failure_kinds.find_failure_kind(session, team_id=record.team_id, fingerprint="new") is None


def test_claims_take_diagnoses_made_before_the_run_in_batches(session: Session) -> None:
    made = [add(session, at=START + timedelta(days=day)) for day in range(3)]

    claimed = diagnoses.claim_for_rediagnosis(
        session, diagnosed_before=START + timedelta(days=2), received_since=START + timedelta(days=1), limit=5
    )

    assert [record.id for record in claimed] == [made[1]]


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_concurrent_claims_on_postgresql_skip_each_others_rows(
    session_factory: sessionmaker[Session], session: Session
) -> None:
    made = [add(session, at=START + timedelta(minutes=minute)) for minute in range(4)]
    later = START + timedelta(days=1)

    with session_factory.begin() as first, session_factory.begin() as second:
        mine = diagnoses.claim_for_rediagnosis(first, diagnosed_before=later, received_since=None, limit=2)
        theirs = diagnoses.claim_for_rediagnosis(second, diagnosed_before=later, received_since=None, limit=2)

        assert [record.id for record in mine] == made[:2]
        assert [record.id for record in theirs] == made[2:]
