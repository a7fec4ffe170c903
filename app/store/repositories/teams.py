"""Queries on teams."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import Team
from app.store.types import utc_now
from app.store.upsert import dialect_insert


def find_team(session: Session, name: str) -> Team | None:
    """The team with this name, if it exists."""
    return session.scalar(select(Team).where(Team.name == name))


def ensure_team_id(session: Session, name: str) -> int:
    """The id of the team with this name, created if new: ensure_team without loading the team."""
    team_id: int | None = session.scalar(select(Team.id).where(Team.name == name))
    return team_id if team_id is not None else ensure_team(session, name).id


def ensure_team(session: Session, name: str) -> Team:
    """The team with this name, created if new (safe when two requests create it at once). Looked for first:
    the team almost always exists, and the insert would be a write (SQLite's lock) on every upload."""
    if (team := find_team(session, name)) is not None:
        return team
    statement = dialect_insert(session, Team).values(name=name, created_at=utc_now())
    session.execute(statement.on_conflict_do_nothing(index_elements=[Team.name]))
    team = find_team(session, name)
    assert team is not None
    return team


def list_team_names(session: Session) -> list[str]:
    """Every team's name, sorted."""
    return list(session.scalars(select(Team.name).order_by(Team.name)))
