"""The page that says what a signature change would do to the stored diagnoses, before anything is rewritten."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.main import create_app
from app.services import tokens
from app.store.models import DiagnosisRecord
from tests.web.sample_logs import gpu_oom_log, missing_field_log


def _post(client: TestClient, log: bytes, *, team: str = "vision", token: str | None = None) -> None:
    """Upload a log for a team, or as a team's token says."""
    fields, headers = ({}, {"Authorization": f"Bearer {token}"}) if token else ({"team": team}, {})
    response = client.post("/api/v1/diagnoses", files={"file": ("train.log", log)}, data=fields, headers=headers)
    assert response.status_code == 201, response.text


def test_a_new_signature_set_shows_which_stored_diagnoses_it_would_change_and_changes_none(
    make_app: Callable[..., FastAPI],
    make_settings: Callable[..., Settings],
    team_diagnoser: Diagnoser,
    session_factory: sessionmaker[Session],
) -> None:
    with TestClient(make_app(auth="off")) as before:
        _post(before, gpu_oom_log())
        _post(before, gpu_oom_log(step=300), team="nlp")
        _post(before, missing_field_log())
        assert "was made with it: there is nothing to change" in before.get("/signatures/changes").text
        assert 'id="stale-notice"' not in before.get("/dashboard").text

    with TestClient(create_app(make_settings(auth="off"), diagnoser=team_diagnoser)) as after:
        dashboard = after.get("/dashboard").text
        assert re.search(r"3 stored diagnoses were made with an earlier signature set", dashboard)
        assert 'href="/signatures/changes"' in dashboard

        page = after.get("/signatures/changes")
        assert page.status_code == 200
        assert f"<code>{team_diagnoser.version}</code> is loaded now" in page.text
        assert "2 of the newest 3 would change" in page.text
        rows = re.findall(r"<tr>(.*?)</tr>", page.text.split("<tbody>", 1)[1], re.S)
        assert len(rows) == 2
        for row in rows:
            assert "category: <del>GPU out of memory</del> → <ins>Config error</ins>" in row
        assert {re.search(r'data-label="Team">(\w+)<', row).group(1) for row in rows} == {"vision", "nlp"}  # type: ignore[union-attr]

    with session_factory() as session:  # nothing was rewritten
        assert sorted(session.scalars(select(DiagnosisRecord.category))) == ["data_error", "gpu_oom", "gpu_oom"]


def test_a_team_sees_only_its_own_diagnoses_change(
    make_app: Callable[..., FastAPI],
    make_settings: Callable[..., Settings],
    team_diagnoser: Diagnoser,
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        vision, nlp = (tokens.create_token(session, team_name=team).secret for team in ("vision", "nlp"))
    with TestClient(make_app(auth="on")) as before:
        _post(before, gpu_oom_log(), token=vision)
        _post(before, gpu_oom_log(step=300), token=nlp)

    with TestClient(create_app(make_settings(auth="on"), diagnoser=team_diagnoser)) as after:
        assert after.get("/signatures/changes").status_code == 401  # the sign-in form
        page = after.get("/signatures/changes", headers={"Authorization": f"Bearer {nlp}"}).text
        assert "1 stored diagnosis was made with another one" in page
        assert re.findall(r'data-label="Team">(\w+)<', page) == ["nlp"]
