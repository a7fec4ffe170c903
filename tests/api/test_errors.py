"""Every error answer has one JSON shape, a fitting status, and never a stack trace."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import oom_log
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.main import create_app


def assert_error_shape(body: object, code: str) -> None:
    assert isinstance(body, dict)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in body["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/diagnoses/424242", 404, "not_found"),
        ("GET", "/no/such/page", 404, "not_found"),
        ("DELETE", "/api/v1/diagnoses", 405, "method_not_allowed"),
        ("GET", "/api/v1/diagnoses?limit=-1", 422, "invalid_parameters"),
    ],
)
def test_routing_and_validation_errors_have_the_one_shape(
    api_client: TestClient, method: str, path: str, status: int, code: str
) -> None:
    response = api_client.request(method, path)

    assert response.status_code == status
    assert_error_shape(response.json(), code)


def test_an_unexpected_error_answers_500_without_details(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()

    def explode() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_api_route("/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode")

    assert response.status_code == 500
    assert_error_shape(response.json(), "internal_error")
    assert "secret" not in response.text


def test_an_unreachable_store_answers_503(diagnoser: Diagnoser, tmp_path: object) -> None:
    settings = Settings.read(
        env_file=None,
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/nothing",
        auth="auto",
    )
    with TestClient(create_app(settings, diagnoser=diagnoser)) as client:
        listed = client.get("/api/v1/diagnoses")
        ready = client.get("/readyz")
        alive = client.get("/healthz")

    assert (listed.status_code, ready.status_code, alive.status_code) == (503, 503, 200)
    assert_error_shape(listed.json(), "store_unavailable")


def test_a_failed_write_answers_503_and_keeps_nothing(api_client: TestClient) -> None:
    engine: Engine = api_client.app.state.engine  # type: ignore[attr-defined]

    def fail_chunk_insert(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("INSERT INTO log_chunks"):
            raise OperationalError(statement, {}, Exception("server closed the connection unexpectedly"))

    event.listen(engine, "before_cursor_execute", fail_chunk_insert)
    try:
        response = api_client.post("/api/v1/diagnoses", content=oom_log())
    finally:
        event.remove(engine, "before_cursor_execute", fail_chunk_insert)

    assert response.status_code == 503
    assert_error_shape(response.json(), "store_unavailable")
    assert api_client.get("/api/v1/diagnoses").json()["total"] == 0
    assert api_client.post("/api/v1/diagnoses", content=oom_log()).status_code == 201


def test_a_diagnosis_past_its_deadline_answers_503(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(diagnose_timeout_seconds=0.0)) as client:
        response = client.post("/api/v1/diagnoses", content=b"x\n" * 3_000_000)

    assert response.status_code == 503
    assert_error_shape(response.json(), "diagnosis_timeout")


def test_the_openapi_document_declares_the_error_shape(api_client: TestClient) -> None:
    schema = api_client.get("/openapi.json").json()

    upload = schema["paths"]["/api/v1/diagnoses"]["post"]
    assert {"400", "401", "403", "413", "415", "422", "503"} <= set(upload["responses"])
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert api_client.get("/docs").status_code == 200
