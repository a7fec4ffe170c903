"""What of a log search reads: its head and its tail (where arguments, model names, and the error are), and its
evidence lines, numbered as the stored log is, in blocks of consecutive lines. Bounded per log, so a 2 GB log
costs no more to index than a short one. Between the first and the last EDGE_LINES, a line that only repeats
an earlier one with other digits (the loss dict of every step, a progress bar) is indexed once: a search
finds its words at their first line, and the index of a training log shrinks several-fold."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import accumulate

from app.diagnosis.reader import strip_ansi

HEAD_LINES = 3000
HEAD_BYTES = 384 << 10
TAIL_LINES = 3000
TAIL_BYTES = 384 << 10
BLOCK_LINES = 64
MAX_LINE_CHARS = 2000
EDGE_LINES = 50  # the first and the last lines, indexed whole, digits and all (the crash and what led to it)
_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")


def _shown(raw: bytes) -> str:
    """A line as the log view shows it: the last state of a \\r-redrawn line, no ANSI codes, bounded."""
    return _shown_lines(raw)[0]


def _shown_lines(raw: bytes) -> list[str]:
    """`_shown` of each line of `raw` (lines joined by \\n), done once for all of them where it can be."""
    # NUL bytes dropped: PostgreSQL text cannot hold them
    text = strip_ansi(raw).replace(b"\x00", b"").decode("utf-8", "replace")
    lines = text.split("\n")
    if "\r" in text:
        lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines]
    return [line.rstrip()[:MAX_LINE_CHARS] for line in lines]


class SearchableLines:
    """Collects a log's searchable lines from its chunks, fed in order. Past the head only the last lines
    of each chunk are kept (as bytes, shown at the end), so a long log costs a count of its newlines."""

    def __init__(self) -> None:
        self._head: list[str] = []  # lines 1, 2, ...
        self._head_bytes = 0
        self._tail: deque[tuple[int, bytes]] = deque()
        self._tail_bytes = 0
        self._number = 0
        self._partial = b""

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk of the log (and hand it back, so this can sit in a stream of chunks)."""
        data = self._partial + chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._partial = data
        else:
            self._partial = data[end + 1:]
            self._take(data[:end])
        return chunk

    def _take(self, whole: bytes) -> None:
        """Take whole lines (joined by \\n: one more line than newlines)."""
        if self._head_open():
            room = HEAD_LINES - len(self._head)
            if whole.count(b"\n") < room and self._head_bytes + len(whole) < HEAD_BYTES:  # all of it fits
                texts = _shown_lines(whole)  # (a shown line is never longer than its bytes)
                self._head += texts
                self._number += len(texts)
                self._head_bytes += sum(map(len, texts))
                return
            lines = whole.split(b"\n", room)
            rest = lines.pop() if len(lines) > room else None  # the lines past the room, still joined
            texts = _shown_lines(b"\n".join(lines))
            # a line is taken while the head holds fewer than HEAD_BYTES before it
            before = list(accumulate(map(len, texts), initial=self._head_bytes))
            taken = bisect_left(before, HEAD_BYTES, hi=len(texts))
            self._head += texts[:taken]
            self._number += taken
            self._head_bytes = before[taken]
            if taken < len(texts):  # its byte bound reached
                rest = b"\n".join(lines[taken:] + ([] if rest is None else [rest]))
            if rest is None:
                return
            whole = rest
        last = whole.rsplit(b"\n", TAIL_LINES)
        if len(last) > TAIL_LINES:
            del last[0]  # lines the tail would drop anyway
        first = self._number + whole.count(b"\n") + 2 - len(last)
        self._number += whole.count(b"\n") + 1
        for offset, raw in enumerate(last):
            self._tail.append((first + offset, raw))
            self._tail_bytes += len(raw)
        while len(self._tail) > TAIL_LINES or self._tail_bytes > TAIL_BYTES:
            self._tail_bytes -= len(self._tail.popleft()[1])

    def _head_open(self) -> bool:
        return len(self._head) < HEAD_LINES and self._head_bytes < HEAD_BYTES

    def blocks(self, extra: Iterable[tuple[int, str]] = ()) -> list[tuple[int, str]]:
        """The lines as (first line number, text) blocks; `extra` lines (the evidence) join them."""
        if self._partial:
            self._take(self._partial)
            self._partial = b""
        # the head is lines 1.. and the tail the last lines: two runs of consecutive numbers
        numbers = [*range(1, len(self._head) + 1), *range(self._number - len(self._tail) + 1, self._number + 1)]
        texts = self._head + (_shown_lines(b"\n".join(raw for _, raw in self._tail)) if self._tail else [])
        kept = {numbers[index]: texts[index] for index in _without_repeats(numbers, texts, last=self._number)}
        for number, text in extra:
            kept.setdefault(number, _shown(text.encode()))
        return list(_grouped(sorted(kept.items())))


def _without_repeats(numbers: list[int], texts: list[str], *, last: int) -> list[int]:
    """The indexes of the lines (numbered in order) less those between the edges that repeat an earlier line
    but for its digits: each template's first line, and every line of the edges."""
    if not texts:
        return []
    templates = "\n".join(texts).translate(_DIGITS_AS_ZERO).split("\n")
    count = len(templates)
    first_of = dict(zip(reversed(templates), range(count - 1, -1, -1), strict=True))  # the earliest index wins
    kept = set(first_of.values())
    kept.update(range(bisect_right(numbers, EDGE_LINES)))
    kept.update(range(bisect_right(numbers, last - EDGE_LINES), count))
    return sorted(kept)


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
