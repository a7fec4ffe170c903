"""What the engine gathers from each block besides signature hits: one interface for every reader.

A collector names the screens it needs (patterns the one Hyperscan pass looks for), is fed each block
with the screens that fired there, and says what it found at the end. The engine is a loop over them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

import msgspec
import regex

from app.diagnosis.frameworks import FrameworkSet, screen_expression
from app.diagnosis.matcher import CONTEXT_BYTES
from app.diagnosis.rootcause import last_exception_line

SAVE_BLOCKS_KEPT = 2  # the last blocks with save lines: a save after the last progress line is in one of them
EXCEPTION_SCREEN = rb"[A-Z]\w*(?:Error|Exception|Interrupt|Failure|Fault)\b"


class Collector(Protocol):
    """Reads the blocks of one log, one after another."""

    def feed(self, data: bytes, first_line: int, fired: Mapping[str, int]) -> None:
        """Take one block of whole lines (ANSI codes removed) and the screens that fired in it, each with where
        its match ends."""


class Markers(msgspec.Struct):
    save_lines: list[int]  # lines that show a checkpoint being written (those of the last blocks that have any)
    first_setup_line: int | None  # the first line that shows the run setting itself up


class MarkerCollector:
    """Save and setup lines, as the framework files spell them.

    A run that saves every 50 steps has save lines in every block; only those after the last progress line
    matter, so the save lines are read only from the last blocks that hold any, once, at the end.
    """

    def __init__(self, frameworks: FrameworkSet) -> None:
        self._frameworks = frameworks  # its markers compiled when a screen first fires for them
        self._save_blocks: list[tuple[bytes, int]] = []
        self._found = Markers(save_lines=[], first_setup_line=None)

    @staticmethod
    def screens(frameworks: FrameworkSet) -> dict[str, bytes]:
        return {
            "save_marker": screen_expression(frameworks.line_marker_source("save_lines").decode()),
            "load_marker": screen_expression(frameworks.line_marker_source("setup_lines").decode()),
        }

    def feed(self, data: bytes, first_line: int, fired: Mapping[str, int]) -> None:
        if "save_marker" in fired:
            self._save_blocks = [*self._save_blocks[-(SAVE_BLOCKS_KEPT - 1) :], (data, first_line)]
        if (
            "load_marker" in fired
            and self._found.first_setup_line is None
            and (found := self._frameworks.line_marker("setup_lines").search(data))
        ):
            self._found.first_setup_line = first_line + data.count(b"\n", 0, found.start())

    def finish(self, after_line: int = 0) -> Markers:
        """The markers; save lines only after `after_line` (the last progress line: the stage is told by the save
        lines after it), so a run that saves every 50 steps is not read for all of them."""
        for data, first_line in self._save_blocks:
            skipped = max(0, after_line + 1 - first_line)  # lines of the block up to after_line
            parts = data.split(b"\n", skipped) if skipped else [data]
            if len(parts) <= skipped or not parts[-1]:
                continue  # the whole block is at or before after_line
            start = len(data) - len(parts[-1])
            self._found.save_lines.extend(
                _line_numbers(data, start, first_line + skipped,
                              self._frameworks.line_marker("save_lines").finditer(data, start)))
        return self._found


class LastException(msgspec.Struct):
    line: int
    text: str
    context: str  # up to CONTEXT_BYTES of the log just before it: its traceback


class ExceptionCollector:
    """The last line that reads like an exception, and the traceback above it.

    Its screen is located: the search for the exception line starts at the block's last exception word.
    """

    SCREENS: Mapping[str, bytes] = {"exception": EXCEPTION_SCREEN}
    LOCATED = ("exception",)

    def __init__(self) -> None:
        self._last: tuple[bytes, int, int, str] | None = None  # block, its first line, line start, text

    def feed(self, data: bytes, first_line: int, fired: Mapping[str, int]) -> None:
        if "exception" in fired and (found := last_exception_line(data, before=fired["exception"])):
            self._last = (data, first_line, *found)

    def finish(self) -> LastException | None:
        """The last exception line, numbered only now: counting lines in every block that has one would cost."""
        if self._last is None:
            return None
        data, first_line, start, text = self._last
        context = data[max(0, start - CONTEXT_BYTES) : start].decode("utf-8", "replace")
        return LastException(first_line + data.count(b"\n", 0, start), text.replace("\x00", ""), context)


def _line_numbers(data: bytes, start: int, line: int, matches: Iterator[regex.Match[bytes]]) -> list[int]:
    """The line of each match, counted from `start`, which is on `line`."""
    numbers, counted_to = [], start
    for match in matches:
        line += data.count(b"\n", counted_to, match.start())
        counted_to = match.start()
        numbers.append(line)
    return numbers
