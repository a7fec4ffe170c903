"""Team-scoped tokens: a token reads and writes only its team's diagnoses; auth auto, cookie, revoked tokens."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import bearer, oom_log
from sqlalchemy.orm import Session, sessionmaker

from app.services.tokens import revoke_token

URL = "/api/v1/diagnoses"


@pytest.fixture
def two_teams(api_client: TestClient, make_token: Callable[[str], str]) -> tuple[str, str, int]:
    """Tokens of teams `vision` and `nlp`, and the id of a diagnosis of `nlp`."""
    vision, nlp = make_token("vision"), make_token("nlp")
    theirs = api_client.post(URL, content=oom_log(job="nlp"), headers=bearer(nlp))
    api_client.post(URL, content=oom_log(job="vision"), headers=bearer(vision))
    assert theirs.json()["team"] == "nlp"
    return vision, nlp, theirs.json()["id"]


def test_a_token_cannot_read_another_teams_diagnosis(api_client: TestClient, two_teams: tuple[str, str, int]) -> None:
    vision, nlp, theirs = two_teams

    for path in (f"{URL}/{theirs}", f"{URL}/{theirs}/log"):
        assert api_client.get(path, headers=bearer(vision)).status_code == 404
        assert api_client.get(path, headers=bearer(nlp)).status_code == 200
    assert api_client.post(f"{URL}/{theirs}/rediagnose", headers=bearer(vision)).status_code == 404


def test_lists_and_stats_show_only_the_tokens_team(api_client: TestClient, two_teams: tuple[str, str, int]) -> None:
    vision, _, _ = two_teams

    listed = api_client.get(URL, headers=bearer(vision)).json()
    asked_for_other = api_client.get(f"{URL}?team=nlp", headers=bearer(vision)).json()
    grouped = api_client.get(f"{URL}?group_by=fingerprint", headers=bearer(vision)).json()
    stats = api_client.get("/api/v1/stats?group_by=team", headers=bearer(vision)).json()

    assert {item["team"] for item in listed["items"]} == {"vision"}
    assert listed["total"] == 1
    assert asked_for_other["total"] == 0
    assert {group["team"] for group in grouped["groups"]} == {"vision"}
    assert stats["groups"] == [{"key": "vision", "count": 1}]


def test_a_token_writes_to_its_own_team_only(api_client: TestClient, two_teams: tuple[str, str, int]) -> None:
    vision, _, _ = two_teams

    forbidden = api_client.post(f"{URL}?team=nlp", content=oom_log(job="x"), headers=bearer(vision))
    own = api_client.post(URL, content=oom_log(job="y"), headers=bearer(vision))

    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    assert own.json()["team"] == "vision"


def test_once_a_token_exists_requests_without_one_answer_401(
    api_client: TestClient, two_teams: tuple[str, str, int]
) -> None:
    for response in (
        api_client.get(URL),
        api_client.post(URL, content=b"log"),
        api_client.get("/api/v1/stats"),
        api_client.get(URL, headers=bearer("tw_wrong")),
        api_client.get(URL, headers={"Authorization": "Basic dXNlcjpwYXNz"}),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_token_cookie_authenticates_too(api_client: TestClient, two_teams: tuple[str, str, int]) -> None:
    vision, _, theirs = two_teams
    api_client.cookies.set("trainwreck_token", vision)

    assert api_client.get(URL).json()["total"] == 1
    assert api_client.get(f"{URL}/{theirs}").status_code == 404


def test_a_revoked_token_stops_working(
    api_client: TestClient, two_teams: tuple[str, str, int], session_factory: sessionmaker[Session]
) -> None:
    vision, _, _ = two_teams
    with session_factory.begin() as session:
        revoke_token(session, vision[:11])

    assert api_client.get(URL, headers=bearer(vision)).status_code == 401


def test_without_tokens_on_loopback_the_api_is_open(api_client: TestClient) -> None:
    assert api_client.get(URL).status_code == 200
    assert api_client.post(f"{URL}?team=anyone", content=oom_log()).status_code == 201


def test_auth_on_requires_a_token_even_without_any(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(auth="on")) as client:
        assert client.get(URL).status_code == 401


def test_auth_off_ignores_tokens_and_shows_every_team(
    make_app: Callable[..., FastAPI], make_token: Callable[[str], str]
) -> None:
    make_token("vision")
    with TestClient(make_app(auth="off")) as client:
        client.post(f"{URL}?team=nlp", content=oom_log())
        assert client.get(URL).json()["total"] == 1


def test_metrics_span_every_team_so_with_auth_on_they_need_the_metrics_token(
    make_app: Callable[..., FastAPI], make_token: Callable[[str], str]
) -> None:
    with TestClient(make_app(auth="on", metrics_token="scrape-me")) as client:
        team_token = make_token("vision")
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {team_token}"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
