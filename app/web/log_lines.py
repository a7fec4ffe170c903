"""Picking numbered lines out of a stored log without holding the whole log: for the log page and context."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.diagnosis.reader import decode_line

MAX_SHOWN_LINE_CHARS = 4000  # longer lines are cut on the page (the raw log keeps them whole)
_MAX_HELD_LINE_BYTES = 4 * MAX_SHOWN_LINE_CHARS


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a log as people read it, with its 1-based number."""

    number: int
    text: str


def select_lines(blocks: Iterable[bytes], wanted: Sequence[range]) -> list[LogLine]:
    """The lines whose numbers fall in any of the ranges, in order; reading stops after the last one."""
    if not wanted:
        return []
    last_wanted = max(span.stop - 1 for span in wanted)
    selected: list[LogLine] = []
    line = 1  # number of the line that `carry` starts
    carry = b""
    for block in blocks:
        data = carry + block
        end = data.rfind(b"\n")
        if end < 0:
            carry = data[:_MAX_HELD_LINE_BYTES]
            continue
        complete, carry = data[: end + 1], data[end + 1 :][:_MAX_HELD_LINE_BYTES]
        count = complete.count(b"\n")
        if any(span.start < line + count and span.stop > line for span in wanted):
            for offset, raw in enumerate(complete.split(b"\n")[:count]):
                if _in_any(line + offset, wanted):
                    selected.append(LogLine(line + offset, _shown(raw)))
        line += count
        if line > last_wanted:
            return selected
    if carry and _in_any(line, wanted):
        selected.append(LogLine(line, _shown(carry)))
    return selected


def line_window(blocks: Iterable[bytes], *, first: int, count: int) -> tuple[list[LogLine], bool]:
    """`count` lines from line `first` on, and whether the log goes on after them."""
    lines = select_lines(blocks, [range(first, first + count + 1)])
    return lines[:count], len(lines) > count


def _in_any(number: int, wanted: Sequence[range]) -> bool:
    return any(number in span for span in wanted)


def _shown(raw: bytes) -> str:
    text = decode_line(raw[:_MAX_HELD_LINE_BYTES])
    if len(text) > MAX_SHOWN_LINE_CHARS:
        return text[:MAX_SHOWN_LINE_CHARS] + " … (line cut here; the raw log has all of it)"
    return text
