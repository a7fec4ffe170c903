"""Background ingest jobs: big uploads diagnosed after a 202 Accepted. On PostgreSQL also the task queue's
own schema (procrastinate), which every replica's worker reads its jobs from.

Revision ID: fb267ea0273b
Revises: 5e2c9a1f7b3d
Create Date: 2026-12-03 19:03:17.769541+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'fb267ea0273b'
down_revision: str | None = '5e2c9a1f7b3d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ingest_jobs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('log_path', sa.Text(), nullable=False),
    sa.Column('log_bytes', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('diagnosis_id', sa.Integer(), nullable=True),
    sa.Column('created', sa.Boolean(), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['diagnosis_id'], ['diagnoses.id'], name=op.f('fk_ingest_jobs_diagnosis_id_diagnoses'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_ingest_jobs_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_jobs'))
    )
    with op.batch_alter_table('ingest_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_jobs_status_created_at'), ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ingest_jobs_team_id'), ['team_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        _create_task_queue()


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        _drop_task_queue()
    with op.batch_alter_table('ingest_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_jobs_team_id'))
        batch_op.drop_index(batch_op.f('ix_ingest_jobs_status_created_at'))

    op.drop_table('ingest_jobs')


def _create_task_queue() -> None:
    """procrastinate's schema, as the installed release ships it (run as the driver takes it: it holds `%`)."""
    from procrastinate.schema import SchemaManager

    bind = op.get_bind()
    if bind.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
        bind.connection.dbapi_connection.cursor().execute(SchemaManager.get_schema())


def _drop_task_queue() -> None:
    bind = op.get_bind()
    for table in ('procrastinate_events', 'procrastinate_periodic_defers', 'procrastinate_jobs',
                  'procrastinate_workers'):
        op.execute(f'DROP TABLE IF EXISTS {table} CASCADE')
    functions = bind.execute(sa.text(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'"
    )).scalars().all()
    for function in functions:
        op.execute(f'DROP FUNCTION IF EXISTS {function} CASCADE')
    # enums and composite types; the tables' own row types went with the tables
    types = bind.execute(sa.text(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'c') AND t.typname LIKE 'procrastinate\\_%'"
    )).scalars().all()
    for type_name in types:
        op.execute(f'DROP TYPE IF EXISTS {type_name} CASCADE')
