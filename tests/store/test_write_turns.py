"""Writers on SQLite take turns on a lock file before they write, instead of polling SQLite's lock."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.store.repositories import teams
from app.store.session import write_transaction


def test_a_second_writer_starts_only_once_the_first_has_committed(session_factory: sessionmaker[Session]) -> None:
    events: list[str] = []
    first_inside = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with write_transaction(session_factory) as session:
            teams.ensure_team(session, "first")
            events.append("first in")
            first_inside.set()
            release_first.wait(10)
            events.append("first out")

    def second() -> None:
        first_inside.wait(10)
        with write_transaction(session_factory) as session:
            events.append("second in")
            teams.ensure_team(session, "second")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_inside.wait(10)
    second_started = threads[1].is_alive()
    threading.Timer(0.3, release_first.set).start()
    for thread in threads:
        thread.join(20)
    assert second_started
    backend = session_factory.kw["bind"].url.get_backend_name()
    if backend == "sqlite":
        assert events == ["first in", "first out", "second in"]
        assert Path(f"{session_factory.kw['bind'].url.database}.writers").exists()
    else:  # PostgreSQL's own row locks are enough: no turns
        assert sorted(events) == ["first in", "first out", "second in"]
    with session_factory() as session:
        assert {"first", "second"} <= set(teams.list_team_names(session))
