"""Pages under team auth: the token form, the HttpOnly cookie, and only the signed-in team's diagnoses."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.services import tokens
from tests.web.sample_logs import gpu_oom_log, missing_field_log


@pytest.fixture
def secured(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_app(auth="on"), follow_redirects=False) as client:
        yield client


def make_token(session_factory: sessionmaker[Session], team: str) -> str:
    with session_factory.begin() as session:
        return tokens.create_token(session, team_name=team).secret


def send(client: TestClient, token: str, log: bytes, job_id: str) -> int:
    response = client.post(
        "/api/v1/diagnoses",
        files={"file": ("train.log", log)},
        data={"job_id": job_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_pages_ask_for_a_token_with_the_sign_in_form(secured: TestClient):
    response = secured.get("/dashboard")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/login">' in response.text
    assert 'name="next" value="/dashboard"' in response.text


def test_signing_in_sets_a_strict_http_only_cookie_and_returns_to_the_page(secured: TestClient, session_factory):
    token = make_token(session_factory, "vision")
    response = secured.post("/login", data={"token": token, "next": "/dashboard?days=7"})
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard?days=7"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"trainwreck_token={token}")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    page = secured.get("/dashboard?days=7")
    assert page.status_code == 200
    assert "Team <strong>vision</strong>" in page.text


def test_a_wrong_token_is_refused_on_the_form(secured: TestClient):
    response = secured.post("/login", data={"token": "nope", "next": "/"})
    assert response.status_code == 401
    assert 'role="alert"' in response.text
    assert "set-cookie" not in response.headers


def test_sign_in_never_redirects_off_the_site(secured: TestClient, session_factory):
    token = make_token(session_factory, "vision")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = secured.post("/login", data={"token": token, "next": target})
        assert response.headers["location"] == "/"


def test_signed_in_pages_show_only_the_teams_own_diagnoses(secured: TestClient, session_factory):
    vision, nlp = make_token(session_factory, "vision"), make_token(session_factory, "nlp")
    send(secured, vision, gpu_oom_log(), "vision-job")
    hidden = send(secured, nlp, missing_field_log(), "nlp-job")
    secured.cookies.set("trainwreck_token", vision)
    listing = secured.get("/").text
    assert "vision-job" in listing and "nlp-job" not in listing
    assert secured.get(f"/diagnoses/{hidden}").status_code == 404
    assert secured.get(f"/diagnoses/{hidden}/log").status_code == 404
    assert "Data error" not in secured.get("/dashboard").text


def test_signing_out_forgets_the_cookie(secured: TestClient, session_factory):
    secured.cookies.set("trainwreck_token", make_token(session_factory, "vision"))
    response = secured.post("/logout")
    assert response.status_code == 303
    assert 'trainwreck_token=""' in response.headers["set-cookie"]
