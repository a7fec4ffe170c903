"""The fast scan: Hyperscan screens whole blocks for every pattern at once, `regex` confirms the few that fire."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import hyperscan
import regex

from app.diagnosis.reader import LineBlock
from app.diagnosis.signatures import Signature, SignatureSet

logger = logging.getLogger(__name__)

PATTERN_TIMEOUT_SECONDS = 0.5
MAX_TIMEOUTS_PER_PATTERN = 3
MAX_HITS_PER_SIGNATURE = 20
MAX_LINE_TEXT = 2000
_BASE_FLAGS = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_ALLOWEMPTY
# Constructs Hyperscan only screens approximately (prefilter mode): lookaround, backreferences, atomic groups.
_LIKELY_UNSUPPORTED = regex.compile(r"\(\?<?[=!]|\(\?>|\\[1-9]|\(\?P=|\\g<")
CONTEXT_BYTES = 6000


@dataclass(frozen=True, slots=True)
class Hit:
    """One line of the log that matched a signature."""

    signature: Signature
    line: int
    text: str
    context: str = ""  # up to CONTEXT_BYTES of the log just before the line (traceback frames)


@dataclass(slots=True)
class _Pattern:
    signature_index: int
    compiled: regex.Pattern[bytes]
    timeouts: int = 0


@dataclass(slots=True)
class ScanState:
    """Hits gathered over the whole log, capped per signature."""

    hits: list[Hit] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


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


class Matcher:
    """All signature patterns compiled once: a Hyperscan database plus the `regex` confirmers."""

    def __init__(self, signature_set: SignatureSet) -> None:
        self.signatures = signature_set.signatures
        self._patterns: list[_Pattern] = []
        expressions: list[bytes] = []
        flags: list[int] = []
        self._unscreened: list[int] = []
        self._screened_ids: list[int] = []
        for signature_index, signature in enumerate(self.signatures):
            for source, compiled in zip(signature.spec.patterns, signature.compiled, strict=True):
                self._patterns.append(_Pattern(signature_index, compiled))
                expressions.append(source.encode("utf-8"))
                flags.append(_BASE_FLAGS | (hyperscan.HS_FLAG_PREFILTER if _LIKELY_UNSUPPORTED.search(source) else 0))
        self._database: hyperscan.Database | None = None
        if expressions:
            try:
                self._database = _compile(expressions, flags, list(range(len(expressions))))
                self._screened_ids = list(range(len(expressions)))
            except hyperscan.error:
                self._database = self._compile_screenable(expressions)

    def _compile_screenable(self, expressions: list[bytes]) -> hyperscan.Database | None:
        """Slow path: find, pattern by pattern, how Hyperscan can screen each; the rest are always confirmed."""
        screenable: list[tuple[int, bytes, int]] = []
        for pattern_id, expression in enumerate(expressions):
            flag = _hyperscan_flags(expression)
            if flag is None:
                self._unscreened.append(pattern_id)
                logger.info("pattern %r is not screened by Hyperscan", expression)
            else:
                screenable.append((pattern_id, expression, flag))
        self._screened_ids = [pattern_id for pattern_id, _, _ in screenable]
        if not screenable:
            return None
        return _compile([item[1] for item in screenable], [item[2] for item in screenable],
                        list(range(len(screenable))))

    def scan(self, block: LineBlock, data: bytes, state: ScanState) -> None:
        """Find every signature line in one block (data is the block with ANSI codes removed)."""
        fired: set[int] = set(self._unscreened)
        if self._database is not None:
            screened_ids = self._screened_ids

            def on_match(expression_id: int, start: int, end: int, flags: int, context: object) -> None:
                fired.add(screened_ids[expression_id])

            self._database.scan(data, match_event_handler=on_match)
        for pattern_id in sorted(fired):
            self._confirm(pattern_id, block, data, state)

    def _confirm(self, pattern_id: int, block: LineBlock, data: bytes, state: ScanState) -> None:
        pattern = self._patterns[pattern_id]
        if pattern.timeouts >= MAX_TIMEOUTS_PER_PATTERN:
            return
        signature = self.signatures[pattern.signature_index]
        counted = state.counts.get(signature.id, 0)
        if counted >= MAX_HITS_PER_SIGNATURE:
            return
        line = block.first_line
        counted_to = 0
        position = 0
        try:
            while counted < MAX_HITS_PER_SIGNATURE:
                match = pattern.compiled.search(data, position, timeout=PATTERN_TIMEOUT_SECONDS)
                if match is None:
                    break
                line += data.count(b"\n", counted_to, match.start())
                counted_to = match.start()
                text = _line_at(data, match.start(), match.end()).decode("utf-8", errors="replace")
                line_start = data.rfind(b"\n", 0, match.start()) + 1
                context = data[max(0, line_start - CONTEXT_BYTES) : line_start].decode("utf-8", errors="replace")
                state.hits.append(
                    Hit(signature=signature, line=line, text=text.replace("\x00", "").strip(), context=context)
                )
                counted += 1
                next_line = data.find(b"\n", max(match.end(), match.start() + 1) - 1)
                if next_line < 0:
                    break
                position = next_line + 1
        except TimeoutError:
            pattern.timeouts += 1
            state.warnings.append(f"signature {signature.id}: a pattern took too long and was cut short")
        state.counts[signature.id] = counted


def _compile(expressions: list[bytes], flags: list[int], ids: list[int]) -> hyperscan.Database:
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=expressions, ids=ids, flags=flags)
    return database


def _hyperscan_flags(expression: bytes) -> int | None:
    """Flags under which Hyperscan can screen this pattern: exact, prefilter, or None when it cannot."""
    for flags in (_BASE_FLAGS, _BASE_FLAGS | hyperscan.HS_FLAG_PREFILTER):
        try:
            _compile([expression], [flags], [0])
        except hyperscan.error:
            continue
        return flags
    return None
