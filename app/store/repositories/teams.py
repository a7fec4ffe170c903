"""Queries on teams."""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.store.models import Team
from app.store.types import utc_now
from app.store.upsert import dialect_insert


def find_team(session: Session, name: str) -> Team | None:
    """The team with this name, if it exists."""
    return session.scalar(select(Team).where(Team.name == name))


# Team ids by name, per store: teams are never deleted, so a team found once keeps its id. Only teams found
# already stored are remembered (one created in a transaction that then rolls back would not exist).
_known_ids: weakref.WeakKeyDictionary[Engine, dict[str, int]] = weakref.WeakKeyDictionary()
_known_ids_lock = threading.Lock()


def ensure_team_id(session: Session, name: str) -> int:
    """The id of the team with this name, created if new: ensure_team without loading the team, and without a
    query at all for a team this process has seen stored."""
    engine = session.get_bind()
    with _known_ids_lock:
        known = _known_ids.setdefault(engine, {}) if isinstance(engine, Engine) else {}
        if (team_id := known.get(name)) is not None:
            return team_id
    found: int | None = session.scalar(select(Team.id).where(Team.name == name))
    if found is None:
        return ensure_team(session, name).id
    with _known_ids_lock:
        known[name] = found
    return found


def forget_team_ids(session: Session) -> None:
    """Drop the remembered ids of this store's teams (after a write that refers to one failed)."""
    engine = session.get_bind()
    if isinstance(engine, Engine):
        with _known_ids_lock:
            _known_ids.pop(engine, None)


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
