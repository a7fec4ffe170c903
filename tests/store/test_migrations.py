"""The migrations build the schema from nothing, take it away again, and match the models."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from app.store import migrate
from app.store.models import Base
from app.store.session import create_db_engine


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table(empty_store_url: str) -> None:
    migrate.upgrade(empty_store_url)

    assert set(Base.metadata.tables) <= _tables(empty_store_url)
    assert migrate.current_revision(empty_store_url) == migrate.head_revision(empty_store_url)


def test_downgrade_to_base_removes_every_table(empty_store_url: str) -> None:
    migrate.upgrade(empty_store_url)
    migrate.downgrade(empty_store_url, "base")

    assert _tables(empty_store_url) <= {"alembic_version"}
    assert migrate.current_revision(empty_store_url) is None


def test_migrations_match_the_models(empty_store_url: str) -> None:
    migrate.upgrade(empty_store_url)

    command.check(migrate.alembic_config(empty_store_url))  # raises when autogenerate finds a difference


def test_upgrading_twice_is_harmless(empty_store_url: str) -> None:
    migrate.upgrade(empty_store_url)
    migrate.upgrade(empty_store_url)

    assert migrate.current_revision(empty_store_url) == migrate.head_revision(empty_store_url)
