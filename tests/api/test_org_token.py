"""An organisation-wide, read-only token: every team's diagnoses and the all-teams dashboard, and no writes."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import bearer, oom_log
from sqlalchemy.orm import Session, sessionmaker

from app.services.tokens import create_token

URL = "/api/v1/diagnoses"


def test_it_reads_every_team_and_writes_nothing(
    make_app: Callable[..., FastAPI], make_token: Callable[[str], str], session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        lead = create_token(session, team_name=None, label="lead").secret
    with TestClient(make_app(auth="on")) as client:
        for team in ("vision", "nlp"):
            client.post(URL, content=oom_log(job=team), headers=bearer(make_token(team)))
        listed = client.get(URL, headers=bearer(lead)).json()
        assert sorted(item["team"] for item in listed["items"]) == ["nlp", "vision"]
        one = listed["items"][0]["id"]
        assert client.get(f"{URL}/{one}/log", headers=bearer(lead)).status_code == 200
        for method, path, kwargs in (("post", URL, {"content": oom_log(job="lead")}),
                                     ("post", f"{URL}/{one}/feedback", {"json": {"verdict": "right"}}),
                                     ("post", f"{URL}/{one}/rediagnose", {}),
                                     ("put", "/api/v1/teams/vision/webhook", {"json": {"url": "https://x"}})):
            answer = getattr(client, method)(path, headers=bearer(lead), **kwargs)
            assert answer.status_code == 403, path
            assert answer.json()["error"]["code"] == "forbidden"
        assert client.post("/api/v1/checks", json={"command": "python t.py --fp16 --bf16"},
                           headers=bearer(lead)).status_code == 200
        client.cookies.set("trainwreck_token", lead)
        dashboard = client.get("/dashboard")
        assert dashboard.status_code == 200 and "all teams" in dashboard.text and "Sign out" in dashboard.text
        client.cookies.clear()
