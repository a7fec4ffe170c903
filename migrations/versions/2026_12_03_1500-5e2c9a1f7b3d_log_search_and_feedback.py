"""Log search (the lines search reads, with the database's own index), feedback on diagnoses, and
organisation-wide read-only tokens.

Revision ID: 5e2c9a1f7b3d
Revises: d1719512b12b
Create Date: 2026-12-03 15:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5e2c9a1f7b3d'
down_revision: str | None = 'd1719512b12b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:  # organisation-wide read-only tokens
        batch_op.add_column(sa.Column('read_only', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.alter_column('team_id', existing_type=sa.Integer(), nullable=True)
    op.create_table('log_text',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('diagnosis_id', sa.Integer(), nullable=False),
    sa.Column('first_line', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['diagnosis_id'], ['diagnoses.id'], name=op.f('fk_log_text_diagnosis_id_diagnoses'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_log_text'))
    )
    with op.batch_alter_table('log_text', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_log_text_diagnosis_id'), ['diagnosis_id'], unique=False)
    op.create_table('feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('diagnosis_id', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('parameter', sa.String(length=200), nullable=True),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['diagnosis_id'], ['diagnoses.id'], name=op.f('fk_feedback_diagnosis_id_diagnoses'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback'))
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_diagnosis_id'), ['diagnosis_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # The text's parts (split where app/store/repositories/log_text.py splits a search) and their word
        # pieces, as lexemes taken literally; a search term matches the start of one.
        op.execute(r"""
            CREATE FUNCTION trainwreck_log_terms(body text) RETURNS tsvector
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
                SELECT array_to_tsvector(ARRAY(
                    SELECT DISTINCT part FROM unnest(
                        regexp_split_to_array(lower(body), '[\s"''`()<>{},;=/:|\[\]]+')
                        || regexp_split_to_array(lower(body), '[^[:alnum:]_]+')) AS part
                    WHERE part <> '' AND octet_length(part) <= 200))
            $$""")
        op.execute("CREATE INDEX ix_log_text_search ON log_text USING gin (trainwreck_log_terms(text))")
    else:  # SQLite: an FTS5 trigram index kept in step with log_text by triggers
        op.execute("CREATE VIRTUAL TABLE log_text_fts USING fts5(text, content='log_text', content_rowid='id', "
                   "tokenize='trigram')")
        op.execute("CREATE TRIGGER log_text_fts_insert AFTER INSERT ON log_text BEGIN "
                   "INSERT INTO log_text_fts(rowid, text) VALUES (new.id, new.text); END")
        op.execute("CREATE TRIGGER log_text_fts_delete AFTER DELETE ON log_text BEGIN "
                   "INSERT INTO log_text_fts(log_text_fts, rowid, text) VALUES ('delete', old.id, old.text); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_log_text_search")
        op.execute("DROP FUNCTION IF EXISTS trainwreck_log_terms(text)")
    else:
        op.execute("DROP TRIGGER IF EXISTS log_text_fts_delete")
        op.execute("DROP TRIGGER IF EXISTS log_text_fts_insert")
        op.execute("DROP TABLE IF EXISTS log_text_fts")
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_diagnosis_id'))
    op.drop_table('feedback')
    with op.batch_alter_table('log_text', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_log_text_diagnosis_id'))
    op.drop_table('log_text')
    op.execute("DELETE FROM api_tokens WHERE team_id IS NULL")
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('team_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('read_only')
