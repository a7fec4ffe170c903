"""FastAPI dependencies shared by the API and the web pages: settings, session, team scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.errors import ForbiddenError
from app.services.auth import TOKEN_COOKIE, TeamScope, bearer_token, resolve_scope
from app.store.session import SessionDep

__all__ = ["SessionDep", "SettingsDep", "TeamScopeDep"]


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def current_team_scope(request: Request) -> TeamScope:
    """Which teams this request may see: from `Authorization: Bearer`, else the `trainwreck_token` cookie.

    Raises AuthenticationError (401) when a token is needed and missing or invalid. Uses a short
    session of its own, so no database connection is held while an upload streams in.
    """
    token = bearer_token(request.headers.get("authorization")) or request.cookies.get(TOKEN_COOKIE)
    with request.app.state.session_factory() as session:
        scope = resolve_scope(session, token=token, settings=request.app.state.settings)
    if scope.read_only and request.method not in ("GET", "HEAD") and request.url.path not in READ_ONLY_POSTS:
        raise ForbiddenError("this token only reads: use a team's token to send logs, feedback or settings")
    return scope


READ_ONLY_POSTS = frozenset({"/api/v1/checks", "/check", "/login", "/logout"})  # they store nothing

SettingsDep = Annotated[Settings, Depends(get_settings)]
TeamScopeDep = Annotated[TeamScope, Depends(current_team_scope)]
