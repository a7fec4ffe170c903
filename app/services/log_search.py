"""What of a log search reads: its head and its tail (where arguments, model names, and the error are), and its
evidence lines, numbered as the stored log is, in blocks of consecutive lines. Bounded per log, so a 2 GB log
costs no more to index than a short one."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from app.diagnosis.reader import strip_ansi

HEAD_LINES = 3000
HEAD_BYTES = 384 << 10
TAIL_LINES = 3000
TAIL_BYTES = 384 << 10
BLOCK_LINES = 64
MAX_LINE_CHARS = 2000


def _shown(raw: bytes) -> str:
    """A line as the log view shows it: the last state of a \\r-redrawn line, no ANSI codes, bounded."""
    # NUL bytes dropped: PostgreSQL text cannot hold them
    text = strip_ansi(raw.rstrip(b"\r").rsplit(b"\r", 1)[-1]).replace(b"\x00", b"").decode("utf-8", "replace")
    return text.rstrip()[:MAX_LINE_CHARS]


class SearchableLines:
    """Collects a log's searchable lines from its chunks, fed in order."""

    def __init__(self) -> None:
        self._head: list[tuple[int, str]] = []
        self._head_bytes = 0
        self._tail: deque[tuple[int, str]] = deque()
        self._tail_bytes = 0
        self._number = 0
        self._partial = b""

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk of the log (and hand it back, so this can sit in a stream of chunks)."""
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            self._take(raw)
        return chunk

    def _take(self, raw: bytes) -> None:
        self._number += 1
        text = _shown(raw)
        if len(self._head) < HEAD_LINES and self._head_bytes < HEAD_BYTES:
            self._head.append((self._number, text))
            self._head_bytes += len(text)
            return
        self._tail.append((self._number, text))
        self._tail_bytes += len(text)
        while len(self._tail) > TAIL_LINES or self._tail_bytes > TAIL_BYTES:
            self._tail_bytes -= len(self._tail.popleft()[1])

    def blocks(self, extra: Iterable[tuple[int, str]] = ()) -> list[tuple[int, str]]:
        """The lines as (first line number, text) blocks; `extra` lines (the evidence) join them."""
        if self._partial:
            self._take(self._partial)
            self._partial = b""
        lines = dict(self._head)
        lines.update(self._tail)
        for number, text in extra:
            lines.setdefault(number, _shown(text.encode()))
        return list(_grouped(sorted(lines.items())))


def _grouped(lines: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Runs of consecutive line numbers, at most BLOCK_LINES each (a gap starts a new block)."""
    block: list[tuple[int, str]] = []
    for number, text in lines:
        if block and (number != block[-1][0] + 1 or len(block) >= BLOCK_LINES):
            yield block[0][0], "\n".join(line for _, line in block)
            block = []
        block.append((number, text))
    if block:
        yield block[0][0], "\n".join(line for _, line in block)
