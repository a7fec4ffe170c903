"""Engines and sessions: one engine per process, one session (and transaction) per request."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
_TURN_POLL_SECONDS = 0.005  # the longest wait between two looks at the writers' lock file


def create_db_engine(url: str) -> Engine:
    """An engine for the store URL; SQLite gets WAL, a busy timeout and foreign keys; PostgreSQL runs in UTC."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    return create_engine(parsed, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def write_transaction(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that writes, committed on exit. On a SQLite file, such writers take turns on a lock file
    first: SQLite's own busy handler sleeps up to 100 ms between looks, so under load a writer waited long
    after the lock was free, and the slowest uploads waited seconds. Past SQLITE_BUSY_TIMEOUT_SECONDS without a turn
    (a writer stuck elsewhere), SQLite's own timeout decides."""
    engine = session_factory.kw.get("bind")
    database = engine.url.database if isinstance(engine, Engine) and engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        with session_factory.begin() as session:
            yield session
        return
    with open(f"{database}.writers", "ab") as turn:
        _take_turn(turn.fileno())
        with session_factory.begin() as session:
            yield session  # the turn ends when the file closes


def _take_turn(descriptor: int) -> None:
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    delay = 0.0002
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                return
            time.sleep(delay)
            delay = min(delay * 2, _TURN_POLL_SECONDS)


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back when it raises."""
    with request.app.state.session_factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
