"""Schema migrations from code: what `trainwreck serve` and `trainwreck db ...` run (Alembic underneath)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.errors import StoreUnavailableError, TrainwreckError
from app.resources import bundled
from app.store.session import create_db_engine

ALEMBIC_INI = bundled("alembic.ini")
MIGRATION_LOCK_KEY = 0x7472_6E77  # "trnw": the PostgreSQL advisory lock migrations hold


class MigrationError(TrainwreckError):
    """The schema could not be migrated (missing migration files, unknown revision, ...)."""

    code = "migration_failed"
    status = 500


def alembic_config(url: str) -> Config:
    """The Alembic configuration of this checkout, aimed at the store `url`."""
    if not ALEMBIC_INI.is_file():
        raise MigrationError(f"the migrations are missing: {ALEMBIC_INI} not found")
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_INI.parent / "migrations"))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the store to `revision` (the newest by default); a no-op when it is already there.

    Processes starting together take turns: the migration runs in one transaction that first takes
    an advisory lock (PostgreSQL) or the write lock (SQLite).
    """
    with _reported_errors(), _migration_config(url) as config:
        command.upgrade(config, revision)


def downgrade(url: str, revision: str = "-1") -> None:
    """Migrate the store back to `revision` (one step by default, `base` for an empty store)."""
    with _reported_errors(), _migration_config(url) as config:
        command.downgrade(config, revision)


def current_revision(url: str) -> str | None:
    """The revision the store is at, None for an empty store."""
    engine = create_db_engine(url)
    try:
        with _reported_errors(), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision(url: str) -> str | None:
    """The newest revision the migrations provide."""
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


@contextmanager
def _migration_config(url: str) -> Iterator[Config]:
    """The Alembic configuration with one transaction to migrate in, committed on success."""
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            elif connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, before reading the revision
            config = alembic_config(url)
            config.attributes["connection"] = connection
            yield config
    finally:
        engine.dispose()


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Alembic and database failures as errors with one-line messages."""
    try:
        yield
    except CommandError as error:
        raise MigrationError(str(error)) from None
    except SQLAlchemyError as error:
        raise StoreUnavailableError(f"cannot migrate the store: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
