"""The migrations build the schema from nothing, take it away again, and match the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from app.store import migrate
from app.store.models import Base
from app.store.session import create_db_engine

ROOT = Path(__file__).resolve().parents[2]


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


def test_the_schema_comes_back_after_a_downgrade_to_base(empty_store_url: str) -> None:
    """Nothing a migration made (procrastinate's types and functions on PostgreSQL included) outlives its downgrade."""
    migrate.upgrade(empty_store_url)
    migrate.downgrade(empty_store_url, "base")
    migrate.upgrade(empty_store_url)

    assert set(Base.metadata.tables) <= _tables(empty_store_url)
    assert migrate.current_revision(empty_store_url) == migrate.head_revision(empty_store_url)


def test_migrations_match_the_models(empty_store_url: str) -> None:
    migrate.upgrade(empty_store_url)

    command.check(migrate.alembic_config(empty_store_url))  # raises when autogenerate finds a difference


def test_upgrading_twice_is_harmless(empty_store_url: str) -> None:
    migrate.upgrade(empty_store_url)
    migrate.upgrade(empty_store_url)

    assert migrate.current_revision(empty_store_url) == migrate.head_revision(empty_store_url)


def test_replicas_starting_together_migrate_in_turn(empty_store_url: str) -> None:
    upgrade = f"from app.store import migrate; migrate.upgrade({empty_store_url!r})"
    replicas = [subprocess.Popen([sys.executable, "-c", upgrade], cwd=ROOT, stderr=subprocess.PIPE) for _ in range(3)]

    errors = [replica.communicate(timeout=120)[1].decode() for replica in replicas]

    assert [replica.returncode for replica in replicas] == [0, 0, 0], errors
    assert migrate.current_revision(empty_store_url) == migrate.head_revision(empty_store_url)
