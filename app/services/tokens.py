"""API tokens: made from a random secret shown once, kept only as a sha256, revoked by id or prefix."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.errors import InvalidRequestError, NotFoundError
from app.services.teams import checked_team_name
from app.store.models import ApiToken
from app.store.repositories import teams, tokens
from app.store.types import utc_now

TOKEN_MARKER = "tw_"
PREFIX_LENGTH = len(TOKEN_MARKER) + 8


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """A new token: `secret` is the only copy of the token itself."""

    id: int
    team: str | None  # None: every team (an organisation-wide, read-only token)
    prefix: str
    secret: str


def token_sha256(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session, *, team_name: str | None, label: str | None = None, read_only: bool = False
) -> CreatedToken:
    """A new token for the team (created if new); with no team, an organisation-wide token that reads every
    team's diagnoses and writes nothing."""
    team = teams.ensure_team(session, checked_team_name(team_name)) if team_name is not None else None
    secret = TOKEN_MARKER + secrets.token_urlsafe(32)
    record = tokens.add_token(session, team=team, prefix=secret[:PREFIX_LENGTH], token_sha256=token_sha256(secret),
                              label=label, read_only=read_only or team is None)
    return CreatedToken(id=record.id, team=team.name if team else None, prefix=record.prefix, secret=secret)


def revoke_token(session: Session, id_or_prefix: str) -> ApiToken:
    """Revoke the one active token with this id or prefix."""
    matches = tokens.find_tokens(session, id_or_prefix.strip())
    if not matches:
        raise NotFoundError(f"no active token has the id or prefix {id_or_prefix!r}")
    if len(matches) > 1:
        found = ", ".join(f"{token.id} ({token.prefix})" for token in matches)
        raise InvalidRequestError(f"{id_or_prefix!r} matches several tokens: {found}; give more of the prefix")
    tokens.revoke_token(session, matches[0], at=utc_now())
    return matches[0]


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token (never the secrets), revoked ones too."""
    return tokens.list_tokens(session)
