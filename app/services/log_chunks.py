"""A log cut into redacted, line-aligned chunks ready to store, and its content digest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from app.diagnosis.redact import redact_secrets

STORED_CHUNK_BYTES = 1 << 20
LONGEST_UNCUT_LINE = 16 * STORED_CHUNK_BYTES
PEM_BEGIN = b"-----BEGIN "
PEM_END = b"-----END "
SEPARATORS = (b" ", b"\t", b",", b";", b"'", b'"', b"&")  # a secret token holds none of these
TOKEN_WINDOW_BYTES = 4096


@dataclass(frozen=True, slots=True)
class LogDigest:
    sha256: str
    size: int


def log_digest(blocks: Iterable[bytes]) -> LogDigest:
    """sha256 and size of the decompressed log (the same log sent plain or compressed has one digest)."""
    digest = hashlib.sha256()
    size = 0
    for block in blocks:
        digest.update(block)
        size += len(block)
    return LogDigest(sha256=digest.hexdigest(), size=size)


def redacted_chunks(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The decompressed log with secrets redacted, in chunks of about STORED_CHUNK_BYTES."""
    for chunk in line_aligned_chunks(blocks):
        yield redact_secrets(chunk)


def line_aligned_chunks(blocks: Iterable[bytes], *, size: int = STORED_CHUNK_BYTES) -> Iterator[bytes]:
    """Regroup blocks into chunks of about `size` bytes that end on a line boundary.

    A chunk is not cut inside a PEM block, so the redaction of private keys sees them whole; only a
    line longer than LONGEST_UNCUT_LINE is cut in the middle.
    """
    pending = bytearray()
    for block in blocks:
        pending += block
        while len(pending) >= size:
            cut = _cut_point(pending)
            if cut == 0:
                break
            yield bytes(pending[:cut])
            del pending[:cut]
    if pending:
        yield bytes(pending)


def _cut_point(data: bytearray) -> int:
    """Where to end the next chunk: 0 to wait for more data."""
    cut = data.rfind(b"\n") + 1
    if cut == 0:
        return _forced_cut(data) if len(data) >= LONGEST_UNCUT_LINE else 0
    key_start = data.rfind(PEM_BEGIN, 0, cut)
    if key_start >= 0 and data.find(PEM_END, key_start, cut) < 0:
        line_start = data.rfind(b"\n", 0, key_start) + 1
        if line_start > 0:
            return line_start
    return cut


def _forced_cut(data: bytearray) -> int:
    """Where to cut a line too long to keep whole: after a separator near its end, so that no token (a key,
    a password) is split between two chunks and escapes the redaction of both."""
    window_start = max(0, len(data) - TOKEN_WINDOW_BYTES)
    separator = max(data.rfind(byte, window_start) for byte in SEPARATORS)
    return separator + 1 if separator >= 0 else len(data)
