"""The tables of the store, as SQLAlchemy 2.0 typed models (portable across SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.store.types import UTCDateTime, utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TEAM_NAME_LENGTH = 64
FINGERPRINT_LENGTH = 128


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Team(Base):
    """A group of people whose diagnoses and tokens belong together; created on first use."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(TEAM_NAME_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ApiToken(Base):
    """An API token of one team, or of the whole organisation (no team: it reads every team's diagnoses and
    writes nothing); only the sha256 of the secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    read_only: Mapped[bool] = mapped_column(default=False)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    revoked_at: Mapped[datetime | None]

    team: Mapped[Team | None] = relationship(lazy="joined")


class DiagnosisRecord(Base):
    """One submitted log's diagnosis with the job's metadata; the full diagnosis JSON is in `result`."""

    __tablename__ = "diagnoses"
    __table_args__ = (
        UniqueConstraint("team_id", "content_sha256"),
        Index(None, "team_id", "received_at", "id"),
        Index(None, "received_at", "id"),
        Index(None, "team_id", "fingerprint"),
        Index(None, "category", "received_at"),
        Index(None, "stage", "received_at"),
        Index(None, "diagnosed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(String(200))
    project: Mapped[str | None] = mapped_column(String(200))
    cluster: Mapped[str | None] = mapped_column(String(200))
    user: Mapped[str | None] = mapped_column("username", String(200))
    exit_code: Mapped[int | None]
    filename: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    diagnosed_at: Mapped[datetime] = mapped_column(default=utc_now)
    category: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32))
    step: Mapped[int | None]
    total_steps: Mapped[int | None]
    signature: Mapped[str | None] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(FINGERPRINT_LENGTH))
    title: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    signature_set_version: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64))
    log_bytes: Mapped[int]
    search_text: Mapped[str] = mapped_column(Text)
    result: Mapped[dict[str, Any]]

    team: Mapped[Team] = relationship(lazy="joined", innerjoin=True)


class LogChunk(Base):
    """A slice of a stored (redacted) log, zstd-compressed; a log is its chunks in `seq` order."""

    __tablename__ = "log_chunks"

    diagnosis_id: Mapped[int] = mapped_column(ForeignKey("diagnoses.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    raw_size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LogText(Base):
    """Lines of a stored (redacted) log that search reads: its head, its tail and its evidence, in blocks of
    consecutive lines. The index over `text` is the database's own, made by the migrations (SQLite: the FTS5
    trigram table `log_text_fts`, which keeps no positions; PostgreSQL: the `search_terms` column, a GIN-indexed
    tsvector of the text's terms). Rows are stored by repositories/log_text.py only, which fills either index as
    it stores them (a row inserted elsewhere would not be found by search)."""

    __tablename__ = "log_text"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    diagnosis_id: Mapped[int] = mapped_column(ForeignKey("diagnoses.id", ondelete="CASCADE"), index=True)
    first_line: Mapped[int]
    text: Mapped[str] = mapped_column(Text)


class Feedback(Base):
    """What a person said about a diagnosis: right, or wrong and what it was instead."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    diagnosis_id: Mapped[int] = mapped_column(ForeignKey("diagnoses.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str] = mapped_column(String(16))  # right | wrong
    category: Mapped[str | None] = mapped_column(String(64))  # what it was instead, when wrong
    parameter: Mapped[str | None] = mapped_column(String(200))  # the setting that fixed it, when known
    author: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))  # web | slack | api
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class FailureKind(Base):
    """Every diagnosis of one team with the same fingerprint: when first and last seen, and how often."""

    __tablename__ = "failure_kinds"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(FINGERPRINT_LENGTH), primary_key=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    count: Mapped[int]


class TeamWebhook(Base):
    """Where a team wants new diagnoses posted (a Slack incoming-webhook URL)."""

    __tablename__ = "team_webhooks"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    slack_webhook_url: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class SlackEvent(Base):
    """A Slack event id already handled; Slack retries deliveries, this makes them no-ops."""

    __tablename__ = "slack_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)


class IngestJob(Base):
    """A big upload diagnosed in the background: what it is, where its log waits, and how it ended."""

    __tablename__ = "ingest_jobs"
    __table_args__ = (Index(None, "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random: the status URL is not guessable
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # queued | running | done | failed
    meta: Mapped[dict[str, Any]]
    log_path: Mapped[str] = mapped_column(Text)
    log_bytes: Mapped[int]
    owner: Mapped[str] = mapped_column(String(200))  # host:pid of the process that queued it
    diagnosis_id: Mapped[int | None] = mapped_column(ForeignKey("diagnoses.id", ondelete="SET NULL"))
    created: Mapped[bool | None]  # False when the team had already sent this log
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    team: Mapped[Team] = relationship(lazy="joined", innerjoin=True)
