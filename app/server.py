"""`trainwreck serve`: migrate the store, refuse unsafe exposure, run the app under uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from app.config import Settings
from app.errors import TrainwreckError
from app.main import create_app
from app.services.auth import is_loopback
from app.store import migrate
from app.store.access import open_store
from app.store.repositories.tokens import any_active_token

logger = logging.getLogger(__name__)
HTTP_PROTOCOL = "app.http_protocol:HeaderDeadlineProtocol"  # an import path: workers import it themselves


class UnsafeBindError(TrainwreckError):
    """Listening beyond this machine without any way to authenticate."""

    code = "unsafe_bind"
    status = 500


def check_exposure(settings: Settings, *, tokens_exist: bool) -> None:
    """Refuse a non-loopback address in `auth = auto` while no token exists (nobody could be let in safely).

    TRAINWRECK_AUTH=off serves openly on purpose; `auth = on` always requires tokens.
    """
    if settings.auth == "auto" and not is_loopback(settings.host) and not tokens_exist:
        raise UnsafeBindError(
            f"refusing to listen on {settings.host} without API tokens: create one with "
            "`trainwreck token create --team TEAM`, or set TRAINWRECK_AUTH=off to serve every team openly"
        )


def serve(settings: Settings, *, workers: int = 1) -> None:
    """Upgrade the store to the newest schema, then serve until interrupted, in `workers` processes.

    Several workers each build the app from the environment (uvicorn imports `create_app` in every
    process), so the settings given here travel as TRAINWRECK_ variables.
    """
    migrate.upgrade(settings.sqlalchemy_url)
    with open_store(settings, migrate_first=False) as session_factory, session_factory() as session:
        tokens_exist = any_active_token(session)
    check_exposure(settings, tokens_exist=tokens_exist)
    if settings.auth == "on" and not tokens_exist:
        logger.warning("auth is on but no token exists: every request will answer 401")
    settings.export("header_timeout_seconds")  # read by the HTTP protocol, in every worker
    if workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                    http=HTTP_PROTOCOL)
        return
    settings.export("host", "port", "public_url")
    uvicorn.run("app.main:create_app", factory=True, host=settings.host, port=settings.port, workers=workers,
                log_level="info", http=HTTP_PROTOCOL)
