"""Reading diagnoses back: one, the list with filters and pages, groups, the log, stats, re-diagnosis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from server_support import oom_log
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import DiagnosisRecord

URL = "/api/v1/diagnoses"


def send(client: TestClient, *, job: str, team: str = "vision", log: bytes | None = None) -> dict:
    response = client.post(f"{URL}?team={team}&job_id={job}", content=log or oom_log(job=job))
    assert response.status_code == 201, response.text
    return response.json()


def test_one_diagnosis_reads_back_as_it_was_answered(api_client: TestClient) -> None:
    created = send(api_client, job="a")

    fetched = api_client.get(f"{URL}/{created['id']}").json()

    assert fetched == {key: value for key, value in created.items() if key != "created"}


def test_the_list_is_newest_first_and_paginated(api_client: TestClient) -> None:
    ids = [send(api_client, job=f"job-{number}")["id"] for number in range(5)]

    first = api_client.get(f"{URL}?limit=2").json()
    third = api_client.get(f"{URL}?limit=2&offset=4").json()

    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    assert [item["id"] for item in third["items"]] == [ids[0]]
    assert (first["total"], first["limit"], third["offset"]) == (5, 2, 4)
    assert "evidence" not in first["items"][0]


def test_the_list_filters_by_team_category_stage_time_and_text(
    api_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    old = send(api_client, job="old-run", team="nlp")
    new = send(api_client, job="new-run")
    unknown = send(api_client, job="odd", log=b"all is well\n")
    with session_factory.begin() as session:
        moved = datetime(2025, 1, 1, tzinfo=UTC)
        session.execute(update(DiagnosisRecord).where(DiagnosisRecord.id == old["id"]).values(received_at=moved))

    def listed(query: str) -> list[int]:
        response = api_client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert listed("team=nlp") == [old["id"]]
    assert listed("category=gpu_oom") == [new["id"], old["id"]]
    assert listed("stage=mid_run") == [new["id"], old["id"]]
    assert listed("since=2025-06-01") == [unknown["id"], new["id"]]
    assert listed("until=2025-01-02T00:00:00Z") == [old["id"]]
    assert listed("q=NEW-RUN") == [new["id"]]
    assert listed("q=out%20of%20memory") == [new["id"], old["id"]]


def test_unknown_filter_values_answer_422(api_client: TestClient) -> None:
    for query in ("category=not_a_category", "stage=later", "since=yesterday", "limit=0", "limit=501", "colour=red",
                  "q=%00", "q=a%00b", "project=%01x", "job_id=a%00b"):  # no text column holds a NUL
        response = api_client.get(f"{URL}?{query}")
        assert response.status_code == 422, query
        assert response.json()["error"]["code"] == "invalid_parameters"


def test_grouping_by_fingerprint_counts_repeats_of_one_failure(api_client: TestClient) -> None:
    for number in range(3):
        send(api_client, job=f"oom-{number}")
    unknown = send(api_client, job="odd", log=b"nothing wrong here\n")

    page = api_client.get(f"{URL}?group_by=fingerprint").json()

    assert page["total"] == 2
    newest, oom = page["groups"]
    assert newest["latest"]["id"] == unknown["id"]
    assert (oom["category"], oom["matching"], oom["count"]) == ("gpu_oom", 3, 3)
    assert oom["first_seen"] <= oom["last_seen"]


def test_the_log_comes_back_as_sent(api_client: TestClient) -> None:
    log = oom_log(job="log")
    created = send(api_client, job="log", log=log)

    response = api_client.get(f"{URL}/{created['id']}/log")

    assert response.status_code == 200
    assert response.content == log
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_stats_group_by_category_stage_team_and_day(api_client: TestClient) -> None:
    send(api_client, job="a")
    send(api_client, job="b", team="nlp")
    send(api_client, job="c", log=b"fine\n")
    today = datetime.now(UTC).date().isoformat()

    def groups(group_by: str) -> list[tuple[str, int]]:
        body = api_client.get(f"/api/v1/stats?group_by={group_by}").json()
        assert body["total"] == 3
        return [(group["key"], group["count"]) for group in body["groups"]]

    assert groups("category") == [("gpu_oom", 2), ("unknown", 1)]
    assert groups("team") == [("vision", 2), ("nlp", 1)]
    assert dict(groups("stage"))["mid_run"] == 2
    assert groups("day") == [(today, 3)]
    assert api_client.get("/api/v1/stats?group_by=week").status_code == 422


def test_rediagnose_answers_the_diagnosis_with_its_signature_version(
    api_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    created = send(api_client, job="again")
    with session_factory.begin() as session:
        stale = datetime.now(UTC) - timedelta(days=1)
        session.execute(update(DiagnosisRecord).values(signature_set_version="old", diagnosed_at=stale))

    response = api_client.post(f"{URL}/{created['id']}/rediagnose")

    assert response.status_code == 200
    body = response.json()
    assert body["signature_set_version"] == created["signature_set_version"] != "old"
    assert body["diagnosed_at"] > created["received_at"]
    assert api_client.post(f"{URL}/999999/rediagnose").status_code == 404


def test_ids_out_of_range_answer_422_not_a_store_error(api_client: TestClient) -> None:
    for path in (f"{URL}/0", f"{URL}/99999999999999999999", f"{URL}/abc/log"):
        assert api_client.get(path).status_code == 422, path
