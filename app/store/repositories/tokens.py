"""Queries on API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.store.models import ApiToken, Team


def add_token(
    session: Session, *, team: Team | None, prefix: str, token_sha256: str, label: str | None, read_only: bool = False
) -> ApiToken:
    """Store a new token of `team` (None: the organisation's), its hash only."""
    token = ApiToken(team=team, prefix=prefix, token_sha256=token_sha256, label=label, read_only=read_only)
    session.add(token)
    session.flush()
    return token


def find_active_token(session: Session, token_sha256: str) -> ApiToken | None:
    """The unrevoked token with this hash, if any."""
    return session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_sha256, ApiToken.revoked_at.is_(None)))


def any_active_token(session: Session) -> bool:
    """Whether at least one unrevoked token exists (then `auth = auto` requires tokens)."""
    return session.scalar(select(ApiToken.id).where(ApiToken.revoked_at.is_(None)).limit(1)) is not None


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, revoked ones too, oldest first."""
    return list(session.scalars(select(ApiToken).outerjoin(Team).order_by(ApiToken.id)))


def find_tokens(session: Session, id_or_prefix: str) -> list[ApiToken]:
    """Unrevoked tokens whose id is `id_or_prefix` or whose prefix starts with it."""
    matches = [ApiToken.prefix.startswith(id_or_prefix, autoescape=True)]
    if id_or_prefix.isdigit():
        matches.append(ApiToken.id == int(id_or_prefix))
    return list(
        session.scalars(select(ApiToken).where(or_(*matches), ApiToken.revoked_at.is_(None)).order_by(ApiToken.id))
    )


def revoke_token(session: Session, token: ApiToken, *, at: datetime) -> None:
    """Mark the token revoked; it stops working at once."""
    token.revoked_at = at
    session.flush()
