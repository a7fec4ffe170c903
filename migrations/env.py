"""Alembic environment: the store URL from Settings (or the caller), batch mode for SQLite."""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from app.config import Settings
from app.store.models import Base
from app.store.session import create_db_engine
from app.store.types import UTCDateTime

config = context.config


def _render_item(kind: str, item: Any, _context: AutogenContext) -> str | bool:
    """Write our column types as the plain SQLAlchemy types they store, so revisions never import app code."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# Objects the migrations make that the models do not describe: the full-text index (SQLite's FTS5 table;
# PostgreSQL's terms column, its index and the function that defines them) and the task queue's own.
UNMODELLED_OBJECTS = ("log_text_fts", "ix_log_text_search", "search_terms", "trainwreck_log_terms", "procrastinate_")


def _include_name(name: str | None, type_: str, _parents: Any) -> bool:
    return not (name and name.startswith(UNMODELLED_OBJECTS))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the store named by the caller (`trainwreck db ...`, tests) or by Settings (`alembic ...`)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("url") or Settings.read().sqlalchemy_url
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
