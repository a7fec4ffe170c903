"""The fast scan: one Hyperscan pass screens each block for every pattern; `regex` confirms the few that fire.

Besides the signatures' own patterns, the same pass screens a few named patterns for the other
readers of the log (progress, save markers, exception lines), so each block is scanned once.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Any

import hyperscan
import msgspec
import regex

from app.diagnosis.knowledge import cached_database, cached_value, compile_database
from app.diagnosis.reader import LineBlock
from app.diagnosis.signatures import CompiledPattern, Signature, SignatureSet

logger = logging.getLogger(__name__)

PATTERN_TIMEOUT_SECONDS = 0.5
MAX_TIMEOUTS_PER_PATTERN = 3
MAX_HITS_PER_SIGNATURE = 20
MAX_CANDIDATE_LINES = 200  # lines per pattern and block that Hyperscan reports for confirmation
MAX_LINE_TEXT = 2000
CONTEXT_BYTES = 6000
AFTER_WINDOW_BYTES = 16 * 1024  # the most of the log a pattern's `after` line is looked for in
SCREEN_FLAGS = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_ALLOWEMPTY
# signature patterns report every match, so that `regex` confirms only the lines Hyperscan points at
SIGNATURE_FLAGS = hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_ALLOWEMPTY
# Constructs Hyperscan only screens approximately (prefilter mode): lookaround, backreferences, atomic groups.
_LIKELY_UNSUPPORTED = regex.compile(r"\(\?<?[=!]|\(\?>|\\[1-9]|\(\?P=|\\g<")


# What every NaN/Inf pattern spells (any case) and no healthy training log prints on most lines: the patterns
# whose every match holds one are scanned only in blocks where the gate saw one. On a loss line every step,
# their engines would otherwise start at each `loss` and `grad_norm`, most of the whole scan's cost.
# `inf` counts only as a word of its own (not the `INFO` of every logger line).
GATE_WORDS = ("nan", "finite", "infinit")
GATE_WHOLE_WORDS = ("inf",)
_GATE = "gate"
# Where `INFO` is on most lines (NCCL_DEBUG=INFO, a logger's every line), the gate's `inf` would fire its check
# on each: those blocks are scanned with every pattern in one database instead, as the gate saves nothing there.
_DENSE_SAMPLE = 64 * 1024
_DENSE_INFO = 16  # INFO's in a block's first 64 KB
_GATE_EXPRESSION = ("(?i)" + "|".join([*GATE_WORDS, *(rf"{word}\b" for word in GATE_WHOLE_WORDS)])).encode()

_RAISE_STATEMENT = regex.compile(rb"(?:\[[^\]\n]{0,40}\]:?)?[ \t]*raise[ \t]")
_LINE_START_ANCHOR = re.compile(r"^((?:\(\?[a-zA-Z]+\))*)\^")  # `^` first, after any inline flags


class Hit(msgspec.Struct, frozen=True):
    """One line of the log that matched a signature."""

    signature: Signature
    line: int
    text: str
    context: str = ""  # up to CONTEXT_BYTES of the log just before the line (traceback frames)


class _Database(msgspec.Struct, frozen=True):
    """A compiled Hyperscan database and what each of its expression ids stands for."""

    database: hyperscan.Database | None
    targets: list[int | str]  # pattern index or screen name, by expression id


class _Pattern(msgspec.Struct, frozen=True):
    signature_index: int
    compiled: CompiledPattern


class _ScreenPlan(msgspec.Struct, frozen=True):
    """What a matcher's databases screen: each expression with its target (pattern index or screen name), its
    Hyperscan flags, and whether every match of it spells a gate word."""

    entries: list[tuple[bytes, int | str]]
    flags: list[int]
    gated: list[bool]


class Screened(msgspec.Struct):
    """What the Hyperscan pass found in one block."""

    screens: dict[str, int]  # each screen that fired -> where its match ends (the last match, for located screens)
    candidates: dict[int, list[int]]  # pattern index -> match end offsets, for regex to confirm


class ScanState(msgspec.Struct):
    """Hits gathered over the whole log, capped per signature."""

    hits: list[Hit] = msgspec.field(default_factory=list)
    counts: dict[str, int] = msgspec.field(default_factory=dict)
    lines_hit: set[tuple[str, int]] = msgspec.field(default_factory=set)  # (signature id, line): one hit per line
    timeouts: dict[int, int] = msgspec.field(default_factory=dict)  # pattern id → patterns cut short in this log
    warnings: list[str] = msgspec.field(default_factory=list)


def _line_at(data: bytes, start: int, end: int) -> bytes:
    """The line around a match; for a \\r-redrawn line, only the redraw that holds the match."""
    line_start = data.rfind(b"\n", 0, start) + 1
    line_end = data.find(b"\n", end)
    if line_end < 0:
        line_end = len(data)
    segment_start = data.rfind(b"\r", line_start, start) + 1 or line_start
    segment_end = data.find(b"\r", end, line_end)
    if segment_end < 0:
        segment_end = line_end
    return data[max(segment_start, line_start) : segment_end][:MAX_LINE_TEXT]


def _screen_database(name: str, expression: bytes, cache_dir: Path | None) -> hyperscan.Database:
    """A screen in a database of its own: exact where Hyperscan can, approximately (prefilter) otherwise."""
    for flags in (SCREEN_FLAGS, SCREEN_FLAGS | hyperscan.HS_FLAG_PREFILTER):
        try:
            return cached_database([expression], [flags], cache_dir)
        except hyperscan.error:
            continue
    raise ValueError(f"screen pattern {name!r} cannot be compiled by Hyperscan")


def _base_flags(target: int | str, located: Collection[str]) -> int:
    """Signature patterns report every match; screens only their first in a block, unless located."""
    if isinstance(target, int) or target in located:
        return SIGNATURE_FLAGS
    return SCREEN_FLAGS


def _screen_flags(expression: bytes, base: int) -> int | None:
    """Flags under which Hyperscan can screen this pattern: exact, prefilter, or None when it cannot."""
    for flags in (base, base | hyperscan.HS_FLAG_PREFILTER):
        try:
            compile_database([expression], [flags])
        except hyperscan.error:
            continue
        return flags
    return None


class Matcher:
    """Signature patterns and named screen patterns in Hyperscan databases, plus the `regex` confirmers.

    A block is scanned without the NaN/Inf patterns (see GATE_WORDS) when a first scan, for the gate words
    alone, sees none in it; otherwise with every pattern at once."""

    def __init__(
        self,
        signature_set: SignatureSet,
        *,
        screen: dict[str, bytes] | None = None,
        located: Collection[str] = (),
        frequent: Collection[str] = (),
        cache_dir: Path | None = None,
    ) -> None:
        """`located` names the screens whose every match is reported (the last one's end is kept); the
        others stop at their first match in a block. `frequent` names screens that match on most lines of a
        training log (a loss every step): in the shared database each of their matches would cost, so each
        is scanned in a database of its own, which stops at its first match."""
        self.signatures = signature_set.signatures
        self._patterns = [_Pattern(signature_index, compiled)
                          for signature_index, signature in enumerate(self.signatures)
                          for compiled in signature.compiled]
        self._always_confirmed: list[int] = []  # patterns Hyperscan cannot screen even approximately
        screens = screen or {}
        self._located = frozenset(located)
        plan = cached_value(cache_dir, "screen-plan",
                            (signature_set.version, sorted(screens.items()), sorted(located), sorted(frequent)),
                            lambda: self._plan(screens, frequent))
        self._every = self._load_or_compile(plan.entries, plan.flags, cache_dir)
        ungated = [index for index, gated in enumerate(plan.gated) if not gated]
        self._ungated = self._load_or_compile([plan.entries[index] for index in ungated],
                                              [plan.flags[index] for index in ungated], cache_dir)
        gate: list[tuple[bytes, int | str]] = [(_GATE_EXPRESSION, _GATE)] if any(plan.gated) else []
        self._gate = self._load_or_compile(gate, [self._flags(entry) for entry in gate], cache_dir)
        self._frequent = [
            (name, _screen_database(name, screens[name], cache_dir)) for name in frequent if name in screens
        ]
        self._after_screens = self._load_after_screens(cache_dir)
        self._scratch = threading.local()  # Hyperscan scratch space is per scan in flight: one per thread

    def _plan(self, screens: dict[str, bytes], frequent: Collection[str]) -> _ScreenPlan:
        """What the databases screen, with which flags, and which patterns the gate words guard: worked out once
        per signature set and screens, and kept in the cache folder (a fresh process's start otherwise)."""
        entries: list[tuple[bytes, int | str]] = [(screen_form(pattern.compiled.source), index)
                                                  for index, pattern in enumerate(self._patterns)]
        entries.extend((expression, name) for name, expression in screens.items() if name not in frequent)
        gated = [always_spells(expression, GATE_WORDS, GATE_WHOLE_WORDS) for expression, _ in entries]
        return _ScreenPlan(entries, [self._flags(entry) for entry in entries], gated)

    def _load_after_screens(self, cache_dir: Path | None) -> dict[str, hyperscan.Database]:
        """Each `after` pattern in a database of its own, to screen the window before a match: `regex` takes
        ~0.2 ms to search 16 KB of long lines for a pattern that starts with a common word."""
        screens = {}
        for source in sorted({pattern.compiled.after_source or "" for pattern in self._patterns} - {""}):
            try:
                screens[source] = _screen_database(source, source.encode("utf-8"), cache_dir)
            except ValueError:  # beyond Hyperscan: `regex` alone searches its windows
                continue
        return screens

    def _shown_after(self, pattern: CompiledPattern, data: bytes, offset: int) -> bool:
        """Whether the line a pattern needs before its match shows within its window of preceding lines.

        The window is looked for in the block itself (a match near a block's start sees fewer lines), and is at
        most AFTER_WINDOW_BYTES long: tracebacks are short lines, and a window of long lines is no traceback.
        """
        if pattern.after is None or pattern.after_source is None:
            return True
        end = data.rfind(b"\n", 0, offset) + 1
        start = end
        floor = max(0, end - AFTER_WINDOW_BYTES)
        for _ in range(pattern.within_lines):
            if start <= floor:
                start = floor
                break
            start = data.rfind(b"\n", floor, start - 1) + 1 or floor
        screen = self._after_screens.get(pattern.after_source)
        if screen is not None:
            seen: list[int] = []
            screen.scan(data[start:end], match_event_handler=lambda *_: seen.append(1),
                        scratch=self._thread_scratch(screen))
            if not seen:  # the screen never misses a match, so the pattern has none here
                return False
        return pattern.after.search(data, start, end, timeout=PATTERN_TIMEOUT_SECONDS) is not None

    def _flags(self, entry: tuple[bytes, int | str]) -> int:
        expression, target = entry
        return _base_flags(target, self._located) | (
            hyperscan.HS_FLAG_PREFILTER if _LIKELY_UNSUPPORTED.search(expression.decode()) else 0
        )

    def _load_or_compile(
        self, entries: list[tuple[bytes, int | str]], flags: list[int], cache_dir: Path | None
    ) -> _Database:
        if not entries:
            return _Database(None, [])
        try:
            database = cached_database([expression for expression, _ in entries], flags, cache_dir)
        except hyperscan.error:
            return self._compile_screenable(entries)
        return _Database(database, [target for _, target in entries])

    def _compile_screenable(self, entries: list[tuple[bytes, int | str]]) -> _Database:
        """Slow path: find, pattern by pattern, how Hyperscan can screen each; the rest are always confirmed."""
        screenable: list[tuple[bytes, int, int | str]] = []
        for expression, target in entries:
            flag = _screen_flags(expression, _base_flags(target, self._located))
            if flag is not None:
                screenable.append((expression, flag, target))
            elif isinstance(target, int):
                self._always_confirmed.append(target)
                logger.info("pattern %r is not screened by Hyperscan", expression)
            else:
                raise ValueError(f"screen pattern {target!r} cannot be compiled by Hyperscan")
        if not screenable:
            return _Database(None, [])
        database = compile_database([item[0] for item in screenable], [item[1] for item in screenable])
        return _Database(database, [target for _, _, target in screenable])

    def scan(self, block: LineBlock, data: bytes, state: ScanState) -> dict[str, int]:
        """Record every signature line of one block (ANSI codes removed); return the screen names that fired."""
        screened = self.screen(data)
        self.confirm(block, data, state, screened)
        return screened.screens

    def screen(self, data: bytes) -> Screened:
        """The Hyperscan pass over one block: which screens fired, and where each signature pattern may match.

        Hyperscan releases the GIL while it scans, so blocks can be screened in worker threads while the
        reasoning over earlier blocks goes on.
        """
        screened = Screened(screens={}, candidates={})
        every_pattern = True
        if self._gate.database is not None and data.count(b"INF", 0, _DENSE_SAMPLE) < _DENSE_INFO:
            self._scan(self._gate, data, screened)
            every_pattern = screened.screens.pop(_GATE, None) is not None
        self._scan(self._every if every_pattern else self._ungated, data, screened)
        for name, database in self._frequent:

            def on_frequent(entry_id: int, start: int, end: int, flags: int, context: object, name: str = name) -> None:
                screened.screens[name] = end

            database.scan(data, match_event_handler=on_frequent, scratch=self._thread_scratch(database))
        return screened

    def _scan(self, compiled: _Database, data: bytes, screened: Screened) -> None:
        if compiled.database is None:
            return
        targets = compiled.targets
        candidates = screened.candidates

        def on_match(entry_id: int, start: int, end: int, flags: int, context: object) -> None:
            target = targets[entry_id]
            if isinstance(target, str):
                screened.screens[target] = end
            elif len(ends := candidates.setdefault(target, [])) < MAX_CANDIDATE_LINES:
                ends.append(end)

        compiled.database.scan(data, match_event_handler=on_match, scratch=self._thread_scratch(compiled.database))

    def confirm(self, block: LineBlock, data: bytes, state: ScanState, screened: Screened) -> None:
        """Confirm with `regex` the lines the screen pointed at, in block order (hits are order-dependent)."""
        lines = _LineIndex(data, block.first_line, block.line_count)
        for pattern_id in sorted({*screened.candidates, *self._always_confirmed}):
            self._confirm(pattern_id, data, lines, state, screened.candidates.get(pattern_id))

    def _thread_scratch(self, database: hyperscan.Database) -> hyperscan.Scratch:
        spaces: dict[int, hyperscan.Scratch] | None = getattr(self._scratch, "spaces", None)
        if spaces is None:
            spaces = self._scratch.spaces = {}
        scratch = spaces.get(id(database))
        if scratch is None:
            scratch = spaces[id(database)] = hyperscan.Scratch(database)
        return scratch

    def _confirm(
        self, pattern_id: int, data: bytes, lines: _LineIndex, state: ScanState, ends: list[int] | None
    ) -> None:
        """Confirm a pattern on the lines Hyperscan reported (each search bounded to its line), or on the
        whole block for a pattern Hyperscan cannot screen (ends is None)."""
        pattern = self._patterns[pattern_id]
        if state.timeouts.get(pattern_id, 0) >= MAX_TIMEOUTS_PER_PATTERN:
            return
        signature = self.signatures[pattern.signature_index]
        counted = state.counts.get(signature.id, 0)
        if counted >= MAX_HITS_PER_SIGNATURE:
            return
        try:
            for match in self._matches(pattern.compiled.compiled, data, ends):
                if counted >= MAX_HITS_PER_SIGNATURE:
                    break
                if not self._shown_after(pattern.compiled, data, match.start()) or _quoted_source(data, match.start()):
                    continue  # before its line is counted: most matches that fail these fail in every block
                line = lines.line_at(match.start())
                if (signature.id, line) in state.lines_hit:
                    continue
                state.lines_hit.add((signature.id, line))
                text = _line_at(data, match.start(), match.end()).decode("utf-8", errors="replace")
                line_start = data.rfind(b"\n", 0, match.start()) + 1
                context = data[max(0, line_start - CONTEXT_BYTES) : line_start].decode("utf-8", errors="replace")
                state.hits.append(
                    Hit(signature=signature, line=line, text=text.replace("\x00", "").strip(), context=context)
                )
                counted += 1
        except TimeoutError:
            state.timeouts[pattern_id] = state.timeouts.get(pattern_id, 0) + 1
            state.warnings.append(f"signature {signature.id}: a pattern took too long and was cut short")
        state.counts[signature.id] = counted

    @staticmethod
    def _matches(
        compiled: regex.Pattern[bytes], data: bytes, ends: list[int] | None
    ) -> Iterator[regex.Match[bytes]]:
        """The pattern's first match on each line, in order: on the reported lines, or over the block."""
        if ends is None:
            position = 0
            while (match := compiled.search(data, position, timeout=PATTERN_TIMEOUT_SECONDS)) is not None:
                yield match
                next_line = data.find(b"\n", max(match.end(), match.start() + 1) - 1)
                if next_line < 0:
                    return
                position = next_line + 1
            return
        previous_start = -1
        for end in sorted(ends):
            line_start = data.rfind(b"\n", 0, max(end - 1, 0)) + 1
            if line_start == previous_start:
                continue
            previous_start = line_start
            line_end = data.find(b"\n", line_start)
            found = compiled.search(data, line_start, line_end if line_end >= 0 else len(data),
                                    timeout=PATTERN_TIMEOUT_SECONDS)
            if found is not None:
                yield found


class _LineIndex:
    """Line numbers of offsets in one block, each counted from the nearest offset counted before (the block's
    start and end to begin with), however many patterns ask."""

    def __init__(self, data: bytes, first_line: int, line_count: int) -> None:
        self._data = data
        self._offsets = [0, len(data)]  # offsets counted to, sorted, and the line at each
        self._lines = [first_line, first_line + line_count]

    def line_at(self, offset: int) -> int:
        index = bisect.bisect_right(self._offsets, offset) - 1
        if index + 1 < len(self._offsets) and self._offsets[index + 1] - offset < offset - self._offsets[index]:
            line = self._lines[index + 1] - self._data.count(b"\n", offset, self._offsets[index + 1])
        else:
            line = self._lines[index] + self._data.count(b"\n", self._offsets[index], offset)
        self._offsets.insert(index + 1, offset)
        self._lines.insert(index + 1, line)
        return line


def always_spells(expression: bytes, words: Sequence[str], whole_words: Sequence[str] = ()) -> bool:
    """Whether every match of the pattern holds one of these words, or one of the whole words followed by a word
    boundary, in any case, as Python's own parse of the pattern shows it: a run of literal characters that
    spells one, in every branch and with or without each optional part. False where it cannot tell (syntax
    only `regex` knows, a word split across groups), which only costs speed."""
    try:
        tree = sre_parser.parse(expression.decode("utf-8"))
    except (re.error, UnicodeDecodeError, OverflowError, RecursionError):
        return False
    return _spells(list(tree), "", tuple(words), tuple(whole_words), budget=[4096])


_WORD_CHARACTER = re.compile(r"\w")
_BOUNDARIES = {sre_constants.AT_BOUNDARY, sre_constants.AT_END, sre_constants.AT_END_STRING}


def _spells(
    items: list[tuple[Any, Any]], run: str, words: tuple[str, ...], whole_words: tuple[str, ...], budget: list[int]
) -> bool:
    """Whether every match of this sequence, after a run of literal text, spells a word (see always_spells)."""
    budget[0] -= 1
    if budget[0] < 0:  # optional parts multiply the ways through; past a few hundred, give up
        return False
    for index, (op, argument) in enumerate(items):
        if op is sre_constants.LITERAL:
            character = chr(argument).lower()
            if not _WORD_CHARACTER.match(character) and any(run.endswith(word) for word in whole_words):
                return True
            run += character
            if any(word in run for word in words):
                return True
            continue
        if op is sre_constants.AT and argument in _BOUNDARIES and any(run.endswith(word) for word in whole_words):
            return True
        rest = items[index + 1 :]
        repeat = op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)
        if op is sre_constants.BRANCH:  # every branch, with what follows it
            return all(_spells([*branch, *rest], run, words, whole_words, budget) for branch in argument[1])
        if op is sre_constants.SUBPATTERN:
            return _spells([*argument[-1], *rest], run, words, whole_words, budget)
        if repeat and argument[0] == 0 and argument[1] == 1:  # an optional part: with it and without
            return (_spells([*argument[2], *rest], run, words, whole_words, budget)
                    and _spells(rest, run, words, whole_words, budget))
        if repeat and argument[0] >= 1 and _spells(list(argument[2]), run, words, whole_words, budget):
            return True  # its first time through spells one
        run = ""  # anything else breaks the run of literals (which only makes the answer False more often)
    return False


def screen_form(source: str) -> bytes:
    """What Hyperscan screens for a signature pattern: the pattern without a leading line-start anchor.

    In multiline mode Hyperscan starts an engine for `^` at every line, which made ten such patterns a third
    of the whole screen's time; without it the pattern's literals lead. The screen only has to report every
    line the pattern may match (a superset does): `regex` confirms the whole pattern, anchor included, on
    each reported line."""
    return _LINE_START_ANCHOR.sub(r"\1", source, count=1).encode("utf-8")


def _quoted_source(data: bytes, offset: int) -> bool:
    """Whether the line is a `raise` statement a traceback quotes under its `File "...", line N` frame: the
    code that raises an error spells its message too (`raise ValueError(f"... not used by the
    HfArgumentParser")`), but the error is the line the exception prints."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    if line_start == 0 or _RAISE_STATEMENT.match(data, line_start) is None:
        return False
    previous = data[data.rfind(b"\n", 0, line_start - 1) + 1 : line_start]
    return b'File "' in previous and b", line " in previous
