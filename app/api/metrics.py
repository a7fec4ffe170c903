"""Prometheus metrics: requests, new diagnoses by category, diagnosis latency, bytes ingested; GET /metrics."""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AuthenticationError
from app.services.auth import auth_required, bearer_token
from app.services.ingest import IngestResult

DIAGNOSE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

router = APIRouter()


class Metrics:
    """The app's metrics, in a registry of its own (so several apps in one process do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "trainwreck_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.request_seconds = Histogram(
            "trainwreck_http_request_seconds", "Time to answer an HTTP request", ["route"], registry=self.registry
        )
        self.diagnoses = Counter(
            "trainwreck_diagnoses", "New diagnoses stored, by category", ["category"], registry=self.registry
        )
        self.diagnose_seconds = Histogram(
            "trainwreck_diagnose_seconds", "Time to diagnose one log", buckets=DIAGNOSE_BUCKETS, registry=self.registry
        )
        self.ingested_bytes = Counter(
            "trainwreck_ingested_bytes", "Bytes of new logs stored (decompressed)", registry=self.registry
        )

    def observe_new_diagnosis(self, result: IngestResult) -> None:
        """An ingest listener: count a new diagnosis."""
        self.diagnoses.labels(category=result.diagnosis.category).inc()
        self.diagnose_seconds.observe(result.diagnose_seconds)
        self.ingested_bytes.inc(result.log_bytes)


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = route_template(scope)
            self.metrics.requests.labels(method=scope["method"], route=route, status=str(status)).inc()
            self.metrics.request_seconds.labels(route=route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route with its parameters as placeholders (`/api/v1/diagnoses/{diagnosis_id}`)."""
    if scope.get("route") is None:
        return "unmatched"
    template = scope["path"]
    for name, value in scope.get("path_params", {}).items():
        text = str(value)
        if not text:
            continue
        if "/" in text and template.endswith("/" + text):
            template = template[: -len(text)] + f"{{{name}}}"
        else:
            template = "/".join(f"{{{name}}}" if part == text else part for part in template.split("/"))
    route: str = template
    return route


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format. With auth on, only for TRAINWRECK_METRICS_TOKEN: the counts span every team."""
    settings = request.app.state.settings
    with request.app.state.session_factory() as session:
        closed = auth_required(session, settings)
    if closed:
        token = bearer_token(request.headers.get("authorization"))
        if not settings.metrics_token or token is None or not hmac.compare_digest(token, settings.metrics_token):
            raise AuthenticationError("/metrics needs the bearer token set in TRAINWRECK_METRICS_TOKEN")
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
