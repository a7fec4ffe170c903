"""Queries on stored logs: the redacted log of a diagnosis as zstd-compressed chunks in the database."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.store.models import LogChunk
from app.store.upsert import table_of

_INSERT_CHUNK = insert(table_of(LogChunk))


def insert_chunk(session: Session, *, diagnosis_id: int, seq: int, data: bytes, raw_size: int) -> None:
    """Insert one compressed chunk right away (nothing accumulates in the session)."""
    session.execute(_INSERT_CHUNK, {"diagnosis_id": diagnosis_id, "seq": seq, "data": data, "raw_size": raw_size})


def iter_compressed_chunks(session: Session, diagnosis_id: int) -> Iterator[bytes]:
    """A stored log's compressed chunks in order, one row at a time (a large log is never loaded whole)."""
    sequence_numbers = list(
        session.scalars(select(LogChunk.seq).where(LogChunk.diagnosis_id == diagnosis_id).order_by(LogChunk.seq))
    )
    for seq in sequence_numbers:
        chunk = select(LogChunk.data).where(LogChunk.diagnosis_id == diagnosis_id, LogChunk.seq == seq)
        yield session.execute(chunk).scalar_one()
