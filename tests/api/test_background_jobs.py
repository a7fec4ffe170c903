"""Big uploads: 202 Accepted with a status URL, diagnosed in a background job (in the process on SQLite,
through procrastinate on PostgreSQL), followed by the API, the page and the client."""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from server_support import LiveServer, bearer, oom_log, padded_log
from sqlalchemy.orm import Session, sessionmaker

from app.client.delivery import Courier
from app.client.spool import Spool
from app.client.submit import LogSubmitter, RetryPolicy, SubmissionMetadata
from app.services.ingest_jobs import RESTARTED_MESSAGE
from app.store.models import IngestJob, Team

URL = "/api/v1/diagnoses"
THRESHOLD = 256 << 10  # uploads past this go to the background in these tests


@pytest.fixture
def background_server(make_app: Callable[..., FastAPI]) -> Iterator[LiveServer]:
    server = LiveServer(make_app(background_log_bytes=THRESHOLD, auth="off"))
    server.start()
    yield server
    server.stop()


def _wait_for_end(client: httpx.Client, status_url: str, *, within: float = 60) -> dict[str, Any]:
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        job: dict[str, Any] = client.get(status_url).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"the job did not end within {within} s")


def test_a_big_upload_is_accepted_at_once_and_diagnosed_in_the_background(
    background_server: LiveServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=background_server.url, timeout=60) as client:
        accepted = client.post(f"{URL}?job_id=big-1", content=padded_log(2 << 20, job="big-1"))
        assert accepted.status_code == 202
        body = accepted.json()
        assert body["status"] in ("queued", "running")
        assert accepted.headers["location"] == f"/api/v1/jobs/{body['id']}"
        assert body["status_url"].endswith(accepted.headers["location"])
        job = _wait_for_end(client, f"/api/v1/jobs/{body['id']}")
        assert job["status"] == "done", job
        assert job["created"] is True and job["error"] is None
        diagnosis = client.get(f"{URL}/{job['diagnosis_id']}").json()
        assert diagnosis["category"] == "gpu_oom" and diagnosis["job_id"] == "big-1"
        assert job["diagnosis_url"].endswith(f"/diagnoses/{job['diagnosis_id']}")
    assert not list((tmp_path / "data" / "jobs").glob("*.log"))  # the waiting log is gone once diagnosed


def test_a_small_upload_is_still_answered_with_its_diagnosis(background_server: LiveServer) -> None:
    with httpx.Client(base_url=background_server.url, timeout=60) as client:
        response = client.post(URL, content=oom_log(job="small"))
    assert response.status_code == 201
    assert response.json()["category"] == "gpu_oom"


def test_the_same_big_log_twice_ends_in_the_same_diagnosis(background_server: LiveServer) -> None:
    log = padded_log(1 << 20, job="twice")
    with httpx.Client(base_url=background_server.url, timeout=60) as client:
        first = _wait_for_end(client, client.post(URL, content=log).headers["location"])
        second = _wait_for_end(client, client.post(URL, content=log).headers["location"])
    assert first["diagnosis_id"] == second["diagnosis_id"]
    assert (first["created"], second["created"]) == (True, False)


def test_a_big_log_that_cannot_be_read_fails_with_the_reason(background_server: LiveServer) -> None:
    junk = bytes(range(256)) * 4096  # 1 MiB that is no text
    with httpx.Client(base_url=background_server.url, timeout=60) as client:
        job = _wait_for_end(client, client.post(URL, content=junk).headers["location"])
        page = client.get(f"/jobs/{job['id']}")
    assert job["status"] == "failed"
    assert job["error"]["code"] == "unreadable_log" and "binary" in job["error"]["message"]
    assert page.status_code == 200 and "could not be diagnosed" in page.text and "binary" in page.text


def test_the_job_page_goes_to_the_diagnosis_once_done(background_server: LiveServer) -> None:
    with httpx.Client(base_url=background_server.url, timeout=60) as client:
        accepted = client.post(URL, content=padded_log(1 << 20, job="page")).json()
        job = _wait_for_end(client, f"/api/v1/jobs/{accepted['id']}")
        page = client.get(f"/jobs/{accepted['id']}")
    assert page.status_code == 303
    assert page.headers["location"] == f"/diagnoses/{job['diagnosis_id']}"


def test_a_job_of_another_team_is_not_found(
    make_app: Callable[..., FastAPI], make_token: Callable[[str], str]
) -> None:
    server = LiveServer(make_app(background_log_bytes=THRESHOLD, auth="on"))
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            mine, theirs = bearer(make_token("vision")), bearer(make_token("speech"))
            accepted = client.post(URL, content=padded_log(1 << 20, job="mine"), headers=mine)
            assert accepted.status_code == 202
            status_url = f"/api/v1/jobs/{accepted.json()['id']}"
            assert client.get(status_url, headers=theirs).status_code == 404
            assert client.get(status_url).status_code == 401
            assert client.get(status_url, headers=mine).json()["team"] == "vision"
            assert client.get("/api/v1/jobs/not-a-job-id", headers=mine).status_code == 422
    finally:
        server.stop()


def test_the_client_follows_the_job_to_its_diagnosis(background_server: LiveServer, tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(padded_log(1 << 20, job="client"))
    with LogSubmitter(background_server.url, None, timeout_seconds=30, retry=RetryPolicy(1, 0.1)) as submitter:
        submission = submitter.submit(log, SubmissionMetadata(job_id="client"))
    assert submission.diagnosis.category == "gpu_oom"
    assert submission.url.endswith(f"/diagnoses/{submission.id}")

    report, warnings = io.StringIO(), io.StringIO()
    with LogSubmitter(background_server.url, None, timeout_seconds=30, retry=RetryPolicy(1, 0.1)) as submitter:
        assert Courier(submitter, Spool(tmp_path / "spool"), report=report, warnings=warnings).deliver(
            log, SubmissionMetadata(job_id="client")
        )
    assert "/diagnoses/" in report.getvalue() and not warnings.getvalue()


def test_jobs_a_dead_server_left_are_failed_at_the_next_start_on_the_embedded_store(
    make_app: Callable[..., FastAPI], session_factory: sessionmaker[Session], store_url: str, tmp_path: Path
) -> None:
    """On SQLite a job runs in the process that took it, so it dies with it; on PostgreSQL the task queue
    keeps it for the next worker, and start-up leaves it alone."""
    embedded = store_url.startswith("sqlite")
    waiting = tmp_path / "data" / "jobs" / f"{'a' * 32}.log"
    waiting.parent.mkdir(parents=True)
    waiting.write_bytes(oom_log())
    dead_pid = _a_dead_pid()
    host = socket.gethostname()
    with session_factory.begin() as session:
        team = Team(name="vision")
        session.add(team)
        session.flush()
        session.add(IngestJob(id="a" * 32, team_id=team.id, status="running", meta={"team": "vision"},
                              log_path=str(waiting), log_bytes=100, owner=f"{host}:{dead_pid}"))
        session.add(IngestJob(id="b" * 32, team_id=team.id, status="queued", meta={"team": "vision"},
                              log_path=str(waiting.with_name("other.log")), log_bytes=100,
                              owner=f"{host}:{os.getpid()}"))
    server = LiveServer(make_app(auth="off"))
    server.start()
    try:
        with httpx.Client(base_url=server.url) as client:
            orphan = client.get(f"/api/v1/jobs/{'a' * 32}").json()
            alive = client.get(f"/api/v1/jobs/{'b' * 32}").json()
    finally:
        server.stop()
    assert alive["status"] == "queued"  # its process is alive: its job is its own
    if embedded:
        assert orphan["status"] == "failed"
        assert orphan["error"] == {"code": "server_restarted", "message": RESTARTED_MESSAGE}
        assert not waiting.exists()
    else:
        assert orphan["status"] == "running" and waiting.exists()


def _a_dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1
