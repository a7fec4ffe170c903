"""A real app driven through the ASGI client; each test gets a fresh, migrated SQLite store swapped into it.

The app (and its diagnoser, whose signatures take a while to compile) is built once per session; the store
is swapped per test, as the lifespan design intends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.store.migrate import upgrade
from app.store.session import create_db_engine, create_session_factory

Upload = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("web-app")
    settings = Settings(data_dir=data_dir, auth="off", _env_file=None)  # type: ignore[call-arg]
    upgrade(settings.sqlalchemy_url)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def client(app_client: TestClient, tmp_path: Path) -> Iterator[TestClient]:
    state = app_client.app.state  # type: ignore[attr-defined]
    kept = state.engine, state.session_factory
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    upgrade(url)
    engine = create_db_engine(url)
    state.engine, state.session_factory = engine, create_session_factory(engine)
    try:
        yield app_client
    finally:
        state.engine, state.session_factory = kept
        engine.dispose()


@pytest.fixture
def upload(client: TestClient) -> Upload:
    """Send a log through the API, as the page's upload does; returns the API's answer."""

    def send(log: bytes, *, team: str = "vision", job_id: str | None = None) -> dict[str, Any]:
        fields = {"team": team} | ({"job_id": job_id} if job_id else {})
        response = client.post("/api/v1/diagnoses", files={"file": ("train.log", log)}, data=fields)
        assert response.status_code in (200, 201), response.text
        return response.json()

    return send
