"""The store for command-line use: migrated, with a session factory, and its failures as one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.errors import StoreUnavailableError
from app.store import migrate
from app.store.session import create_db_engine, create_session_factory


@contextmanager
def open_store(settings: Settings, *, migrate_first: bool = True) -> Iterator[sessionmaker[Session]]:
    """A session factory on the configured store (upgraded to the newest schema first), disposed on exit."""
    if migrate_first:
        migrate.upgrade(settings.sqlalchemy_url)
    engine = create_db_engine(settings.sqlalchemy_url)
    try:
        yield create_session_factory(engine)
    except SQLAlchemyError as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StoreUnavailableError(f"the store failed: {message}") from None
    finally:
        engine.dispose()
