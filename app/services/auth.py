"""Who may see what: the team scope of a request, from its API token and the auth setting."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import AuthenticationError
from app.services.tokens import token_sha256
from app.store.repositories import tokens

TOKEN_COOKIE = "trainwreck_token"


@dataclass(frozen=True, slots=True)
class TeamScope:
    """The teams a request may see and write: one team (a token's), or every team when auth is off; an
    organisation-wide token sees every team and writes nothing (`read_only`)."""

    team: str | None
    read_only: bool = False

    @property
    def all_teams(self) -> bool:
        """True when auth is off (or open on loopback): every team is visible."""
        return self.team is None

    def can_see(self, team_name: str) -> bool:
        """Whether this scope covers `team_name`."""
        return self.team is None or self.team == team_name


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_required(session: Session, settings: Settings) -> bool:
    """Whether requests need a token: `on`; or `auto` once a token exists or off loopback; never `off`."""
    if settings.auth == "off":
        return False
    if settings.auth == "on" or not is_loopback(settings.host):
        return True
    return tokens.any_active_token(session)


def resolve_scope(session: Session, *, token: str | None, settings: Settings) -> TeamScope:
    """The scope of a request carrying `token` (or none); AuthenticationError when it may not pass."""
    if settings.auth == "off":
        return TeamScope(team=None)
    if token:
        record = tokens.find_active_token(session, token_sha256(token))
        if record is None:
            raise AuthenticationError("the API token is not valid (unknown or revoked)")
        if record.team is None:
            return TeamScope(team=None, read_only=True)
        return TeamScope(team=record.team.name, read_only=record.read_only)
    if auth_required(session, settings):
        raise AuthenticationError("an API token is required: send the header 'Authorization: Bearer <token>'")
    return TeamScope(team=None)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; AuthenticationError for other schemes."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError("use the header 'Authorization: Bearer <token>'")
    return value.strip()
