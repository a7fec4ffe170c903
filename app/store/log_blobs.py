"""Stored logs: zstd-compressed chunks in the database, compressed before the write and read back as a stream."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import zstandard
from sqlalchemy.orm import Session

from app.store.repositories.log_chunks import insert_chunk, iter_compressed_chunks

COMPRESSION_LEVEL = 3


@dataclass(frozen=True, slots=True)
class CompressedLog:
    """A log compressed chunk by chunk into a temporary file: the compressed sizes and the sizes before."""

    spool: BinaryIO
    sizes: list[tuple[int, int]]

    def chunks(self) -> Iterator[tuple[bytes, int]]:
        """Each compressed chunk with its uncompressed size, in order."""
        self.spool.seek(0)
        for compressed_size, raw_size in self.sizes:
            yield self.spool.read(compressed_size), raw_size


@contextmanager
def compressed_log(chunks: Iterable[bytes]) -> Iterator[CompressedLog]:
    """Compress the log's chunks into a temporary file (deleted on exit), so storing it is only quick inserts.

    Compressing (and redacting) a large log takes seconds; done before the transaction starts
    writing, it holds neither SQLite's write lock nor a long PostgreSQL transaction meanwhile.
    """
    compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL)
    with tempfile.TemporaryFile(prefix="trainwreck-log-") as spool:
        sizes = []
        for chunk in chunks:
            data = compressor.compress(chunk)
            spool.write(data)
            sizes.append((len(data), len(chunk)))
        yield CompressedLog(spool=cast(BinaryIO, spool), sizes=sizes)


def write_log(session: Session, diagnosis_id: int, log: CompressedLog) -> None:
    """Insert the compressed log as the diagnosis's chunks, one row each."""
    for seq, (data, raw_size) in enumerate(log.chunks()):
        insert_chunk(session, diagnosis_id=diagnosis_id, seq=seq, data=data, raw_size=raw_size)


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
