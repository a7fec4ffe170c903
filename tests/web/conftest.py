"""The pages' tests drive the real app in-process (ASGI) on a fresh store, SQLite then PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

Upload = Callable[..., dict[str, Any]]


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_app(auth="off")) as test_client:
        yield test_client


@pytest.fixture
def upload(client: TestClient) -> Upload:
    """Send a log through the API, as the page's upload does; returns the API's answer."""

    def send(log: bytes, *, team: str = "vision", job_id: str | None = None, **origin: str) -> dict[str, Any]:
        """`origin`: project, cluster and user, as `trainwreck submit` sends them."""
        fields = {"team": team} | ({"job_id": job_id} if job_id else {}) | origin
        response = client.post("/api/v1/diagnoses", files={"file": ("train.log", log)}, data=fields)
        assert response.status_code in (200, 201), response.text
        return response.json()

    return send
