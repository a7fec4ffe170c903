"""Reading a log: decompression by magic bytes, bounded memory, blocks that end on line boundaries."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import regex
import zstandard

from app.errors import LogTooLargeError, UnreadableLogError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_SIZE = 1 << 20
BLOCK_TARGET = 4 << 20
MAX_LINE_BYTES = 1 << 20
ANSI_ESCAPE = regex.compile(rb"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
BINARY_SAMPLE = 64 * 1024
_TEXT_CONTROL = set(b"\t\n\r\x0c\x1b\x08")

LogSource = Path | bytes | bytearray | BinaryIO


@dataclass(frozen=True, slots=True)
class LineBlock:
    """Whole lines of the log: `data` ends with a newline; `first_line` is 1-based."""

    data: bytes
    first_line: int


def _open(source: LogSource) -> tuple[BinaryIO, bool]:
    if isinstance(source, Path):
        try:
            return source.open("rb"), True
        except OSError as error:
            raise UnreadableLogError(f"cannot open {source}: {error.strerror or error}") from None
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source), True
    return source, False


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = stream.read(size - len(data))
        if not part:
            break
        data += part
    return data


def iter_decompressed(source: LogSource, *, max_bytes: int) -> Iterator[bytes]:
    """Yield the decompressed log in blocks; plain, gzip or zstd by magic bytes, bounded to max_bytes."""
    stream, owned = _open(source)
    try:
        head = _read_exactly(stream, 4)
        if head.startswith(GZIP_MAGIC):
            blocks = _gunzip(head, stream)
        elif head.startswith(ZSTD_MAGIC):
            blocks = _unzstd(head, stream)
        else:
            blocks = _plain(head, stream)
        total = 0
        for block in blocks:
            total += len(block)
            if total > max_bytes:
                raise LogTooLargeError(
                    f"the log is larger than {max_bytes:,} bytes once decompressed (compression bomb?)"
                )
            yield block
    finally:
        if owned:
            stream.close()


def _plain(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    if head:
        yield head
    while block := stream.read(READ_SIZE):
        yield block


def _gunzip(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    pending = head
    while True:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while not decompressor.eof:
            data = pending or stream.read(READ_SIZE)
            pending = b""
            if not data:
                raise UnreadableLogError("truncated gzip: the stream ends before its last member is complete")
            try:
                while data:
                    out = decompressor.decompress(data, READ_SIZE)
                    if out:
                        yield out
                    data = decompressor.unconsumed_tail
            except zlib.error as error:
                raise UnreadableLogError(f"corrupt gzip data: {error}") from None
        rest = decompressor.unused_data.lstrip(b"\x00")
        if not rest:
            rest = stream.read(READ_SIZE).lstrip(b"\x00")
        if not rest:
            return
        if not rest.startswith(GZIP_MAGIC[:1]):
            raise UnreadableLogError("corrupt gzip data after the first member")
        pending = rest


def _unzstd(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    chained = io.BufferedReader(_Prepended(head, stream))  # type: ignore[arg-type]
    reader = zstandard.ZstdDecompressor().stream_reader(chained, read_across_frames=True)
    try:
        while block := reader.read(READ_SIZE):
            yield block
    except zstandard.ZstdError as error:
        raise UnreadableLogError(f"corrupt or truncated zstd data: {error}") from None


class _Prepended(io.RawIOBase):
    """A stream with bytes already read from its start put back in front."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def looks_binary(sample: bytes) -> bool:
    """True when a sample of the log is mostly not text (NUL bytes and control characters)."""
    if not sample:
        return False
    odd = sum(1 for byte in sample if byte < 0x20 and byte not in _TEXT_CONTROL)
    return odd > len(sample) * 0.3


def iter_line_blocks(
    blocks: Iterable[bytes], *, target: int = BLOCK_TARGET, max_line: int = MAX_LINE_BYTES
) -> Iterator[LineBlock]:
    """Regroup raw blocks into ~target-sized blocks of whole lines, with their first line number.

    A line longer than max_line is cut to max_line bytes (the rest is skipped, not held in memory),
    so line numbers still match the submitted file.
    """
    pending = bytearray()
    line = 1
    skipping = False
    checked_binary = False
    for raw in blocks:
        block = raw
        if not checked_binary:
            checked_binary = True
            if looks_binary(block[:BINARY_SAMPLE]):
                raise UnreadableLogError("this looks like binary data, not a text log")
        if skipping:
            newline = block.find(b"\n")
            if newline < 0:
                continue
            skipping = False
            block = block[newline + 1 :]
        pending += block
        if len(pending) < target and len(pending) <= max_line:
            continue
        cut = pending.rfind(b"\n")
        if cut >= 0:
            data = bytes(pending[: cut + 1])
            del pending[: cut + 1]
            yield LineBlock(data, line)
            line += data.count(b"\n")
        if len(pending) > max_line:
            yield LineBlock(bytes(pending[:max_line]) + b"\n", line)
            line += 1
            pending.clear()
            skipping = True
    if pending:
        if not pending.endswith(b"\n"):
            pending += b"\n"
        yield LineBlock(bytes(pending), line)


def strip_ansi(data: bytes) -> bytes:
    """Remove terminal colour and cursor codes (no newlines are touched)."""
    if b"\x1b" not in data:
        return data
    return ANSI_ESCAPE.sub(b"", data)


def decode_line(data: bytes) -> str:
    """One line for people: the last redraw of a \\r-rewritten line, decoded leniently, ANSI removed."""
    text = strip_ansi(data).rstrip(b"\r\n")
    if b"\r" in text:
        parts = [part for part in text.split(b"\r") if part.strip()]
        text = parts[-1] if parts else b""
    return text.decode("utf-8", errors="replace").replace("\x00", "")
