"""PostgreSQL: the terms a log's searchable lines hold are stored with them (`log_text.search_terms`, computed by
the service as it stores the lines, GIN-indexed) instead of an index over a SQL function that split every row
again in the database (it was most of an upload's cost there). Existing rows are filled by that function,
which stays as the definition the service's split follows (a test compares the two). SQLite is unchanged.

Revision ID: 7c3e5b9d1a20
Revises: fb267ea0273b
Create Date: 2026-12-06 23:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '7c3e5b9d1a20'
down_revision: str | None = 'fb267ea0273b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("ALTER TABLE log_text ADD COLUMN search_terms tsvector")
    op.execute("UPDATE log_text SET search_terms = trainwreck_log_terms(text)")
    op.execute("CREATE INDEX ix_log_text_search_terms ON log_text USING gin (search_terms)")
    op.execute("DROP INDEX ix_log_text_search")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("CREATE INDEX ix_log_text_search ON log_text USING gin (trainwreck_log_terms(text))")
    op.execute("DROP INDEX ix_log_text_search_terms")
    op.execute("ALTER TABLE log_text DROP COLUMN search_terms")
