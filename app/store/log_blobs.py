"""Stored logs: written as zstd-compressed chunks in the database, read back as a stream."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, cast

import zstandard
from sqlalchemy.orm import Session

from app.store.repositories.log_chunks import insert_chunk, iter_compressed_chunks

COMPRESSION_LEVEL = 3


def write_log(session: Session, diagnosis_id: int, chunks: Iterable[bytes]) -> int:
    """Store the log given as chunks (one row each, compressed); returns the bytes stored, uncompressed."""
    compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL)
    stored = 0
    for seq, chunk in enumerate(chunks):
        insert_chunk(session, diagnosis_id=diagnosis_id, seq=seq, data=compressor.compress(chunk), raw_size=len(chunk))
        stored += len(chunk)
    return stored


def iter_log(session: Session, diagnosis_id: int) -> Iterator[bytes]:
    """The stored log, decompressed, one chunk at a time."""
    decompressor = zstandard.ZstdDecompressor()
    for data in iter_compressed_chunks(session, diagnosis_id):
        yield decompressor.decompress(data)


def open_log(session: Session, diagnosis_id: int) -> BinaryIO:
    """The stored log as a binary file object (what the diagnoser reads)."""
    raw: Any = _IteratorStream(iter_log(session, diagnosis_id))
    return cast(BinaryIO, io.BufferedReader(raw))


class _IteratorStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            next_chunk = next(self._chunks, None)
            if next_chunk is None:
                return 0
            self._pending = next_chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
