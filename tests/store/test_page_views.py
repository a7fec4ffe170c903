"""The web pages' queries: light list rows with repeat counts, one scan for the dashboard, top failure kinds."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from app.store.repositories.diagnoses import DiagnosisFilters
from app.store.repositories.page_views import (
    DayTally,
    list_summaries,
    tally_by_day_category_and_stage,
    top_failure_kinds,
)
from tests.store.test_diagnoses_repository import START, add


def test_summaries_come_newest_first_with_how_often_their_team_saw_the_kind(session: Session) -> None:
    older = add(session, job_id="a", at=START)
    newer = add(session, job_id="b", at=START + timedelta(hours=1))
    other = add(session, job_id="c", fingerprint="fp-nan", category="nan_loss", at=START + timedelta(hours=2))
    page = list_summaries(session, DiagnosisFilters(), fingerprint=None, limit=10, offset=0)
    assert [item.id for item in page.items] == [other, newer, older]
    assert [item.repeats for item in page.items] == [1, 2, 2]
    assert page.items[0].team == "vision" and page.total == 3


def test_summaries_can_be_narrowed_to_one_failure_kind_and_paged(session: Session) -> None:
    add(session, job_id="a", at=START)
    newer = add(session, job_id="b", at=START + timedelta(hours=1))
    add(session, job_id="c", fingerprint="fp-nan", at=START + timedelta(hours=2))
    page = list_summaries(session, DiagnosisFilters(), fingerprint="fp-oom", limit=1, offset=0)
    assert [item.id for item in page.items] == [newer]
    assert page.total == 2


def test_the_dashboard_tally_counts_per_utc_day_category_and_stage(session: Session) -> None:
    add(session, job_id="a", at=START)
    add(session, job_id="b", at=START + timedelta(minutes=5))
    add(session, job_id="c", stage="load", category="data_error", fingerprint="fp-data", at=START)
    add(session, job_id="d", at=START + timedelta(days=1))
    add(session, job_id="e", team="nlp", at=START)
    tallies = tally_by_day_category_and_stage(session, DiagnosisFilters(team="vision"))
    day = START.date()
    assert sorted(tallies, key=lambda tally: (tally.day, tally.category)) == [
        DayTally(day, "data_error", "load", 1),
        DayTally(day, "gpu_oom", "mid_run", 2),
        DayTally(day + timedelta(days=1), "gpu_oom", "mid_run", 1),
    ]
    assert all(isinstance(tally.day, date) for tally in tallies)


def test_top_failure_kinds_rank_by_count_in_the_window_with_the_newest_of_each(session: Session) -> None:
    add(session, job_id="a", at=START)
    newest = add(session, job_id="b", at=START + timedelta(hours=3), title="OOM again")
    add(session, job_id="c", fingerprint="fp-nan", category="nan_loss", at=START + timedelta(hours=1))
    add(session, job_id="old", at=START - timedelta(days=40))
    kinds = top_failure_kinds(session, DiagnosisFilters(since=START - timedelta(days=1)), limit=5)
    assert [(kind.fingerprint, kind.count) for kind in kinds] == [("fp-oom", 2), ("fp-nan", 1)]
    assert kinds[0].latest_id == newest
    assert kinds[0].title == "OOM again" and kinds[0].team == "vision"
    assert kinds[0].last_seen == START + timedelta(hours=3)
