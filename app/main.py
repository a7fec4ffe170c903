"""The service: create_app() builds the FastAPI app; its lifespan builds the engine, sessions and diagnoser."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import __version__
from app.api import api_router
from app.api.body_limit import BodyLimitMiddleware, is_log_upload
from app.api.errors import install_error_handlers
from app.api.health import router as health_router
from app.api.metrics import Metrics, RequestMetricsMiddleware
from app.api.metrics import router as metrics_router
from app.api.uploads import sweep_spooled_uploads
from app.config import Settings
from app.diagnoser import build_checker, build_diagnoser
from app.diagnosis.engine import Diagnoser
from app.services.ingest_jobs import fail_abandoned_job, fail_orphaned_jobs, run_job
from app.services.job_queue import InProcessQueue, job_queue
from app.services.listeners import IngestListeners
from app.slack.lifecycle import install_slack, running_slack
from app.store.session import create_db_engine, create_session_factory
from app.web.routes import install_web_pages

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build what requests share (engine, session factory, diagnoser, worker limiter); dispose at shutdown."""
    settings: Settings = app.state.settings
    if swept := sweep_spooled_uploads(settings.upload_spool_dir):
        logger.info("removed %d uploads left half-written by an earlier server", swept)
    engine = create_db_engine(settings.sqlalchemy_url)
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    if app.state.diagnoser is None:
        app.state.diagnoser = build_diagnoser(settings)
    app.state.checker = build_checker(settings)
    app.state.diagnose_limiter = anyio.CapacityLimiter(settings.max_concurrent_diagnoses)
    app.state.small_log_limiter = anyio.CapacityLimiter(settings.max_concurrent_diagnoses)  # the small logs' lane
    run = partial(run_job, app.state.session_factory, diagnoser=app.state.diagnoser, settings=settings,
                  listeners=app.state.ingest_listeners)
    queue = job_queue(settings.sqlalchemy_url, run, app.state.diagnose_limiter,
                      concurrency=settings.max_concurrent_diagnoses,
                      abandon=partial(fail_abandoned_job, app.state.session_factory))
    if isinstance(queue, InProcessQueue) and (orphans := fail_orphaned_jobs(app.state.session_factory)):
        logger.info("%d background diagnoses died with an earlier server; marked failed", orphans)
    app.state.job_queue = queue
    await queue.start()
    try:
        with running_slack(app):
            yield
    finally:
        await queue.stop()
        engine.dispose()


def create_app(settings: Settings | None = None, *, diagnoser: Diagnoser | None = None) -> FastAPI:
    """The trainwreck service: JSON API, web pages, Slack routes, /healthz and /metrics.

    `diagnoser` is built from the settings at startup unless given (tests share one).
    `app.state.ingest_listeners` (IngestListeners) is called with every new, committed diagnosis;
    add a callback there to act on them (metrics are one such listener).
    """
    app = FastAPIOffline(  # /docs with its scripts served from the package: no CDN (ReDoc fetches its logo from one)
        redoc_url=None,
        title="trainwreck",
        version=__version__,
        summary="What killed your training run, where it died, and which parameters to change.",
        lifespan=lifespan,
    )
    app.state.settings = settings or Settings.read()
    app.state.diagnoser = diagnoser
    app.state.metrics = Metrics()
    app.state.ingest_listeners = IngestListeners()
    app.state.ingest_listeners.add(app.state.metrics.observe_new_diagnosis)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, exempt=is_log_upload)
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(api_router)
    # Web pages (app.web) and the Slack app (app.slack) mount their routers here.
    install_web_pages(app)
    install_slack(app)
    return app
