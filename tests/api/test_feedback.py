"""Feedback on diagnoses: stored with who said it, refused when it says nothing usable, counted per signature."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from server_support import bearer, oom_log

URL = "/api/v1/diagnoses"


def test_right_and_wrong_are_stored_and_listed(api_client: TestClient) -> None:
    created = api_client.post(URL, content=oom_log(job="f1")).json()
    right = api_client.post(f"{URL}/{created['id']}/feedback", json={"verdict": "right", "author": "ana"})
    assert right.status_code == 201 and right.json()["author"] == "ana" and right.json()["source"] == "api"
    wrong = api_client.post(f"{URL}/{created['id']}/feedback",
                            json={"verdict": "wrong", "category": "host_oom", "parameter": "--dataloader_num_workers"})
    assert wrong.status_code == 201
    assert wrong.json()["parameter"] == "dataloader_num_workers" and wrong.json()["author"] == "anonymous"
    listed = api_client.get(f"{URL}/{created['id']}/feedback").json()
    assert [item["verdict"] for item in listed] == ["right", "wrong"]


def test_feedback_that_says_nothing_usable_is_422(api_client: TestClient) -> None:
    created = api_client.post(URL, content=oom_log(job="f2")).json()
    for body in ({"verdict": "maybe"}, {"verdict": "wrong"}, {"verdict": "wrong", "category": "melted"},
                 {"verdict": "right", "author": "a\u0000b"}, {"verdict": "right", "colour": "red"}):
        response = api_client.post(f"{URL}/{created['id']}/feedback", json=body)
        assert response.status_code == 422, body
        assert set(response.json()["error"]) == {"code", "message"}
    assert api_client.get(f"{URL}/{created['id']}/feedback").json() == []


def test_another_teams_diagnosis_takes_no_feedback(api_client: TestClient, make_token: Callable[[str], str]) -> None:
    vision, nlp = make_token("vision"), make_token("nlp")
    theirs = api_client.post(URL, content=oom_log(job="f3"), headers=bearer(nlp)).json()
    answer = api_client.post(f"{URL}/{theirs['id']}/feedback", json={"verdict": "right"}, headers=bearer(vision))
    assert answer.status_code == 404
    mine = api_client.post(f"{URL}/{theirs['id']}/feedback", json={"verdict": "right"}, headers=bearer(nlp))
    assert mine.json()["author"] == "team nlp"


def test_the_dashboard_shows_precision_per_signature_by_the_latest_word(api_client: TestClient) -> None:
    first = api_client.post(URL, content=oom_log(job="f4")).json()
    second = api_client.post(URL, content=oom_log(job="f5")).json()
    api_client.post(f"{URL}/{first['id']}/feedback", json={"verdict": "wrong", "category": "host_oom"})
    api_client.post(f"{URL}/{first['id']}/feedback", json={"verdict": "right"})  # changed their mind
    api_client.post(f"{URL}/{second['id']}/feedback", json={"verdict": "wrong", "category": "host_oom"})
    page = api_client.get("/dashboard").text
    row = page.split(f"<code>{first['signature']}</code>")[1].split("</tr>")[0]
    assert [cell.split("<")[0] for cell in row.split('<td class="num">')[1:]] == ["1", "1", "50 %"]


def test_the_page_form_records_feedback_and_shows_it(api_client: TestClient) -> None:
    created = api_client.post(URL, content=oom_log(job="f6")).json()
    sent = api_client.post(f"/diagnoses/{created['id']}/feedback", follow_redirects=False,
                           data={"verdict": "wrong", "category": "shm_bus_error", "author": "Bo", "parameter": "shm"})
    assert sent.status_code == 303
    page = api_client.get(f"/diagnoses/{created['id']}").text
    assert "<strong>Bo</strong>" in page and "<code>shm_bus_error</code>" in page
    refused = api_client.post(f"/diagnoses/{created['id']}/feedback", data={"verdict": "wrong"})
    assert refused.status_code == 422 and "say what it was" in refused.text
