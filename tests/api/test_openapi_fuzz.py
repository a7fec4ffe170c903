"""Fuzz the JSON API and health routes from their OpenAPI schema: whatever the input, never a 5xx."""

from __future__ import annotations

from collections.abc import Callable

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

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
