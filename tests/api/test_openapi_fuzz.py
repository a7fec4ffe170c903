"""Fuzz the JSON API and health routes from their OpenAPI schema: whatever the input, never a 5xx."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from server_support import LiveServer

EXAMPLES_PER_ROUTE = 25
FUZZED_PREFIXES = ("/api/", "/healthz", "/readyz")


def test_no_input_makes_the_api_fail_with_a_5xx(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(max_upload_bytes=1 << 20)
    with TestClient(app):  # runs the lifespan; schemathesis then calls the app in-process (ASGI)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [
            operation
            for operation in (result.ok() for result in schema.get_all_operations())
            if operation.path.startswith(FUZZED_PREFIXES)
        ]
        assert len(operations) >= 7

        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None, suppress_health_check=list(HealthCheck)
            )
            def never_a_server_error(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=[not_a_server_error])

            never_a_server_error()


def test_the_schemathesis_cli_finds_no_server_error_against_the_live_server(
    make_app: Callable[..., FastAPI], tmp_path: Path
) -> None:
    """The same question asked as a user would: `schemathesis run` over real HTTP, every JSON route."""
    server = LiveServer(make_app(max_upload_bytes=1 << 20, background_log_bytes=64 << 10))
    server.start()
    try:
        finished = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
             "--checks", "not_a_server_error", "--max-examples", str(EXAMPLES_PER_ROUTE), "--seed", "7",
             "--include-path-regex", "^/(api/|healthz|readyz)", "--request-timeout", "30", "--no-color",
             "--report", "junit", "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,  # its cache folder goes there
        )
    finally:
        server.stop()
    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-2000:]
    assert "passed" in finished.stdout.lower(), finished.stdout[-4000:]
