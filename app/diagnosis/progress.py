"""Where the run was: optimizer steps, totals and loss values, read from what trainers print.

A multi-GB log is mostly progress: reading every bar and loss line in Python would be the slowest
part of a diagnosis. So blocks are screened first; loss values are sampled (a bounded number per
block, plus every NaN/Inf); steps are read in full only from the last window that shows progress.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence

import msgspec
import regex

from app.diagnosis.frameworks import CompiledStepFormat, screen_expression
from app.diagnosis.model import LossPoint
from app.diagnosis.reader import decode_line

_NUMBER = rb"(nan|-?inf|[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"

_EPOCH_IN_DESCRIPTION = re.compile(rb"(?i)epoch\s*(\d+)")
_LOSS = re.compile(
    rb"['\"]loss['\"]:\s*['\"]?" + _NUMBER + rb"['\"]?"
    rb"|(?<![\w.])(?:lm |train[_ ]?)?(?:loss|Loss|LOSS)\s*[=:]?\s*" + _NUMBER + rb"(?![\w.])"
)
_BAD_LOSS = re.compile(
    rb"(?:['\"](?:loss|grad_norm)['\"]:\s*['\"]?|(?<![\w.])(?:lm |train[_ ]?)?(?:loss|grad_norm)\s*[=:]?\s*)"
    rb"(nan|-?inf)\b",
    re.I,
)
_TRAINING_MARKERS = re.compile(rb"\*\*\*\*\* Running training \*\*\*\*\*|\b[Ss]tart(?:ing)? training\b")
_TOTAL_STEPS = re.compile(rb"Total optimization steps\s*=\s*([\d,]+)|\bmax_steps\s*[=:]\s*'?(\d+)")

# What the screen looks for, so that the patterns above only run on blocks that have something; the
# progress screen comes from the step formats of the framework files (ProgressTracker.screens).
SCREEN_PATTERNS = {
    "loss": rb"(?i)loss",
    "loss_titlecase": rb"Loss",  # so that only the spellings present are searched for
    "loss_uppercase": rb"LOSS",
    "bad_loss": rb"(?i)(?:loss|grad_norm)['\"]?\s*[=:]?\s*['\"]?-?(?:nan|inf)\b",
    "training_marker": _TRAINING_MARKERS.pattern,
    "total_steps": _TOTAL_STEPS.pattern,
}

_LOSS_SPELLINGS = [(b"Loss", "loss_titlecase"), (b"LOSS", "loss_uppercase")]
MAX_LOSS_POINTS = 2000
DIVERGENCE_BASELINE_POINTS = 512
MIN_DIVERGENCE_BASELINE = 4
ABSURD_LOSS = 1e4  # far above any cross-entropy's start (ln of the vocabulary size: about 12 for 150k tokens)
LOSS_SAMPLES_PER_BLOCK = 32  # for the first blocks; a long log's curve is thinned anyway
LOSS_SAMPLES_PER_LATER_BLOCK = 8
DENSE_SAMPLED_BLOCKS = 16
WINDOW = 64 * 1024
_END_PROBE = 4096  # how much of a block's end (its start) is read first for its last (first) step mark
_LOOKBACK = 600
_LOSS_REACH = 256  # how far past the word `loss` its value may be read
_SAME_LINE_REACH = 2048  # how far around a loss value its line is read for a step mark


class StepMark(msgspec.Struct, frozen=True):
    """A training step the log shows, and the line that shows it."""

    step: int
    total: int | None
    line: int


class LossEvent(msgspec.Struct, frozen=True):
    """A notable loss value and the log line that shows it."""

    point: LossPoint
    line: int
    text: str
    baseline: LossPoint | None = None


class Progress(msgspec.Struct):
    """What the log says about the run's progress, as of its end."""

    step: int | None = None
    total_steps: int | None = None
    step_line: int | None = None
    training_started: bool = False
    training_started_line: int | None = None
    first_training_line: int | None = None
    loss_curve: list[LossPoint] = msgspec.field(default_factory=list)
    first_bad_loss: LossEvent | None = None  # the first NaN/Inf loss or grad norm
    divergence: LossEvent | None = None  # the peak of a loss that exploded without NaN


def _to_float(raw: bytes) -> float:
    try:
        return float(raw)
    except ValueError:
        return math.nan


def _line_text(data: bytes, offset: int) -> str:
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    return decode_line(data[start : end if end >= 0 else len(data)])[:2000]


def _training_marks(
    formats: Sequence[CompiledStepFormat], data: bytes, start: int, stop: int, *, first_only: bool = False
) -> list[tuple[int, int, int]]:
    """(offset, step, total or 0) of each training step mark in data[start:stop], in order.

    Tuples, not objects: a window of progress bars holds thousands of marks and only one is kept.
    """
    found: list[tuple[int, int, int]] = []
    for step_format in formats:
        for match in step_format.pattern.finditer(data, start, stop):
            mark = _read_mark(step_format, match)
            if mark is None:
                continue
            found.append((match.start(), *mark))
            if first_only:
                break
    found.sort()
    return found[:1] if first_only else found


def _read_mark(step_format: CompiledStepFormat, match: regex.Match[bytes]) -> tuple[int, int] | None:
    """(step, total or 0) from one match of a step format, or None when it is no training step."""
    groups = match.groupdict()
    if step_format.description is not None:
        description = groups["description"] or b""
        if not step_format.description.match(description):
            return None
        step, total = int(groups["step"]), int(groups["total"] or 0)
        epoch = _EPOCH_IN_DESCRIPTION.search(description)
        if epoch and total:
            return step + int(epoch.group(1)) * total, 0  # a per-epoch bar: the run's total is unknown
        return step, total
    if groups.get("epoch") is not None:
        epochs_done = max(int(groups["epoch"]) - step_format.spec.epoch_base, 0)
        return int(groups["iteration"]) + epochs_done * int(groups["epoch_total"]), 0
    return int(groups["step"]), int(groups.get("total") or 0)


def _last_step_before(formats: Sequence[CompiledStepFormat], data: bytes, start: int, end: int) -> int | None:
    """The step of the last mark in data[start:end], read segment by segment (lines and `\\r` redraws) from
    the end: a window of redrawn bars holds many marks, and only the last counts."""
    while end > start:
        segment = max(data.rfind(b"\n", start, end - 1), data.rfind(b"\r", start, end - 1)) + 1 or start
        marks = _training_marks(formats, data, max(segment - 1, start), end)  # with the `\\r` a bar may start with
        if marks:
            return marks[-1][1]
        end = segment - 1 if segment > start else start
    return None


def step_of_line(formats: Sequence[CompiledStepFormat], line: bytes) -> tuple[int, int] | None:
    """(step, total or 0) that a line shows, by the first format that reads it (for samples and callers)."""
    marks = _training_marks(formats, line, 0, len(line))
    return marks[0][1:] if marks else None


def _mark(data: bytes, first_line: int, found: tuple[int, int, int]) -> StepMark:
    offset, step, total = found
    return StepMark(step=step, total=total or None, line=first_line + data.count(b"\n", 0, offset))


class _LossFinder:
    """Finds loss values in one block: literal finds (each word's next offset remembered), then the full pattern."""

    def __init__(self, data: bytes, words: list[bytes]) -> None:
        self._data = data
        self._next = {word: data.find(word) for word in words}

    def next_at_or_after(self, position: int) -> re.Match[bytes] | None:
        """The first loss value that starts at or after position."""
        data = self._data
        while True:
            for word, offset in self._next.items():
                if 0 <= offset < position:
                    self._next[word] = data.find(word, position)
            found = [offset for offset in self._next.values() if offset >= 0]
            if not found:
                return None
            offset = min(found)
            # never before `position`: a value already taken within reach of this word is not taken again;
            # both ends bounded, so a long line costs no more than a short one
            start = max(offset - 16, position, 0)
            start = data.rfind(b"\n", start, offset) + 1 or start
            end = data.find(b"\n", offset, offset + _LOSS_REACH)
            match = _LOSS.search(data, start, end if end >= 0 else min(len(data), offset + _LOSS_REACH))
            if match is not None:
                return match
            position = offset + 4


def _windows_backwards(size: int) -> list[tuple[int, int]]:
    starts = range(max(0, size - WINDOW), -1, -WINDOW) if size > WINDOW else [0]
    windows = [(start, min(size, start + WINDOW + _LOOKBACK)) for start in starts]
    if windows[-1][0] > 0:
        windows.append((0, windows[-1][0] + _LOOKBACK))
    return windows


class ProgressTracker:
    """Reads progress block by block in one pass; only the last window with progress is read in full."""

    FREQUENT = ("loss", "progress")  # screens that match on most lines of a training log

    @staticmethod
    def screens(step_formats: Sequence[CompiledStepFormat]) -> dict[str, bytes]:
        """What the screening pass must find for this tracker: its own patterns, and every step format.

        The step formats are screened in any case (a superset: every block with a mark is still found): each
        format's case variants (`[Ss]tep|STEP`) are literals of their own, and past a dozen formats' worth
        Hyperscan changes to a literal matcher that reads a block without progress at half the speed."""
        progress = b"(?i)" + b"|".join(b"(?:" + screen_expression(step.spec.pattern) + b")" for step in step_formats)
        return {**SCREEN_PATTERNS, "progress": progress}

    def __init__(self, step_formats: Sequence[CompiledStepFormat]) -> None:
        self._formats = tuple(step_formats)
        self._same_line_formats = tuple(step for step in step_formats if step.spec.loss_on_line)
        self._last_progress_block: tuple[bytes, int] | None = None
        self._first_training_total: int | None = None
        self._first_training_line: int | None = None
        self._stated_total: int | None = None
        self._training_started_line: int | None = None
        self._loss_points: list[tuple[LossPoint, int]] = []
        self._first_bad: LossEvent | None = None
        self._finite_losses: list[float] = []  # sorted; the first DIVERGENCE_BASELINE_POINTS values
        self._divergence: LossEvent | None = None
        self._last_step_seen: int | None = None
        self._loss_blocks = 0
        self._formats_seen: tuple[CompiledStepFormat, ...] = ()  # the formats this log has shown, tried first

    def feed(self, data: bytes, first_line: int, fired: Mapping[str, int]) -> None:
        """Take one block of whole lines (ANSI codes removed) and the screen's verdict on it."""
        if "progress" in fired:
            self._last_progress_block = (data, first_line)
            if self._first_training_line is None:
                self._find_first_training_mark(data, first_line)
        if "total_steps" in fired and self._stated_total is None and (total := _TOTAL_STEPS.search(data)):
            self._stated_total = int((total.group(1) or total.group(2)).replace(b",", b""))
        if "training_marker" in fired and self._training_started_line is None:
            marker = _TRAINING_MARKERS.search(data)
            if marker is not None:
                self._training_started_line = first_line + data.count(b"\n", 0, marker.start())
        marked = "progress" in fired  # whether any step mark may be in this block: its screen misses none
        if "bad_loss" in fired and self._first_bad is None:
            self._read_first_bad_loss(data, first_line, fired["bad_loss"], marked=marked)
        if "loss" in fired:
            words = [b"loss"] + [word for word, name in _LOSS_SPELLINGS if name in fired]
            self._sample_losses(data, first_line, words, marked=marked)

    def _find_first_training_mark(self, data: bytes, first_line: int) -> None:
        probe_end = data.rfind(b"\n", 0, _END_PROBE) + 1  # whole lines only: no mark cut short
        windows = [(0, probe_end)] if probe_end else []
        windows += [(start, min(len(data), start + WINDOW)) for start in range(0, len(data), WINDOW)]
        for start, end in windows:
            marks = _training_marks(self._formats, data, start, end, first_only=True)
            if marks:
                first = _mark(data, first_line, marks[0])
                self._first_training_line, self._first_training_total = first.line, first.total
                return

    def _step_before(self, data: bytes, offset: int) -> int | None:
        """The training step a loss value belongs to: on its own line, or the last bar just before it.

        The formats the log has shown so far are tried first; the others only when those find nothing.
        """
        reach = max(0, offset - _SAME_LINE_REACH)
        line_start = data.rfind(b"\n", reach, offset) + 1 or reach
        line_end = data.find(b"\n", offset, offset + _SAME_LINE_REACH)
        same_line = data[line_start : line_end if line_end >= 0 else offset + _SAME_LINE_REACH]
        same_line_marks = _training_marks(self._same_line_formats, same_line, 0, len(same_line), first_only=True)
        if same_line_marks:
            return same_line_marks[0][1]
        start = max(0, offset - _LOOKBACK)
        step = _last_step_before(self._formats_seen, data, start, offset) if self._formats_seen else None
        if step is None:
            unseen = [step_format for step_format in self._formats if step_format not in self._formats_seen]
            step = _last_step_before(unseen, data, start, offset)
            if step is not None:
                self._formats_seen = tuple(
                    step_format for step_format in self._formats
                    if step_format in self._formats_seen or _training_marks([step_format], data, start, offset)
                )
        return step

    def _point_at(self, data: bytes, offset: int, value: float, *, marked: bool) -> LossPoint:
        """The loss value at offset, at the step before it; in a block without step marks (`marked` False), at
        the step after the last one seen, without looking for marks that are not there."""
        step = self._step_before(data, offset) if marked else None
        if step is None:
            step = (self._last_step_seen or 0) + 1
        self._last_step_seen = step
        return LossPoint(step=step, loss=value)

    def _read_first_bad_loss(self, data: bytes, first_line: int, screened_end: int, *, marked: bool) -> None:
        """The first NaN/Inf loss, searched from the line _LOSS_REACH before the end of the screen's first match:
        the screen's pattern holds every match of _BAD_LOSS, so none starts earlier (but after that much
        whitespace). A search of the whole block in `re` took ~0.2 s for each 4 MB."""
        start = data.rfind(b"\n", 0, max(0, screened_end - _LOSS_REACH)) + 1
        match = _BAD_LOSS.search(data, start)
        if match is None:
            return
        point = self._point_at(data, match.start(), math.nan if b"nan" in match.group(1).lower() else math.inf,
                               marked=marked)
        line = first_line + data.count(b"\n", 0, match.start())
        self._first_bad = LossEvent(point, line, _line_text(data, match.start()))
        self._loss_points.append((point, line))

    def _sample_losses(self, data: bytes, first_line: int, words: list[bytes], *, marked: bool) -> None:
        """Loss values spread over the block, in order: LOSS_SAMPLES_PER_BLOCK in the first blocks, fewer after."""
        self._loss_blocks += 1
        samples = LOSS_SAMPLES_PER_BLOCK if self._loss_blocks <= DENSE_SAMPLED_BLOCKS else LOSS_SAMPLES_PER_LATER_BLOCK
        stride = max(1, len(data) // samples)
        position = 0
        finder = _LossFinder(data, words)
        while (match := finder.next_at_or_after(position)) is not None:
            raw = match.group(1) if match.group(1) is not None else match.group(2)
            point = self._point_at(data, match.start(), _to_float(raw), marked=marked)
            self._loss_points.append((point, first_line))  # the block's line: enough to keep them in order
            if math.isfinite(point.loss) and self._divergence is None:
                self._watch_divergence(point, first_line, data, match.start())
            position = max(match.end(), (match.start() // stride + 1) * stride)
        if len(self._loss_points) > MAX_LOSS_POINTS:
            keep = {id(point) for point in self._loss_points[::2]}
            self._loss_points = [
                item for item in self._loss_points if id(item) in keep or not math.isfinite(item[0].loss)
            ]

    def _watch_divergence(self, point: LossPoint, first_line: int, data: bytes, offset: int) -> None:
        """A loss that explodes without NaN: a finite value far above the run's usual level before it.

        The level is the lower quartile of the values seen so far, not the best one: a noisy loss (a
        regression, a small batch) dips far below its level now and then, and a rise back from a dip is
        no divergence; a steady climb from the level is.
        """
        seen = self._finite_losses
        if point.loss >= ABSURD_LOSS:  # no training loss starts this high: it exploded before it was logged
            line = first_line + data.count(b"\n", 0, offset)
            self._divergence = LossEvent(point, line, _line_text(data, offset), baseline=None)
            return
        if len(seen) >= MIN_DIVERGENCE_BASELINE:
            level = seen[len(seen) // 4]
            if point.loss > max(3 * level, level + 5) and point.loss > 8:
                line = first_line + data.count(b"\n", 0, offset)
                baseline = LossPoint(step=point.step, loss=level)
                self._divergence = LossEvent(point, line, _line_text(data, offset), baseline=baseline)
                return
        if len(seen) < DIVERGENCE_BASELINE_POINTS:
            bisect.insort(seen, point.loss)

    def finish(self, *, stated_total: int | None = None) -> Progress:
        """The progress as of the end of the log; stated_total is max_steps when the run facts show it."""
        self._loss_points.sort(key=lambda item: item[1])
        progress = Progress(
            loss_curve=[point for point, _ in self._loss_points],
            first_bad_loss=self._first_bad,
            first_training_line=self._first_training_line,
            divergence=self._divergence,
        )
        total = stated_total or self._stated_total or self._first_training_total
        if self._last_progress_block is not None:
            last = self._last_training_mark(total)
            if last is not None:
                progress.step, progress.step_line = last.step, last.line
                progress.total_steps = total or last.total
                progress.training_started = True
        if self._training_started_line is not None:
            progress.training_started = True
            progress.training_started_line = self._training_started_line
        if progress.step is None and self._loss_points:
            progress.training_started = True
            point, line = self._loss_points[-1]
            progress.step, progress.step_line = point.step, line
        return progress

    def _last_training_mark(self, total: int | None) -> StepMark | None:
        """The last step mark of the last block with progress; the formats the loss values were read with
        are tried first (a window of bars read with every format is most of a short log's cost)."""
        assert self._last_progress_block is not None
        data, first_line = self._last_progress_block
        for formats in (self._formats_seen, self._formats) if self._formats_seen else (self._formats,):
            # the block's last few KB first: a mark there that the filter below would keep is the answer
            probe = [mark for mark in _training_marks(formats, data, max(0, len(data) - _END_PROBE), len(data))
                     if not total or mark[2] == total]
            if probe:
                return _mark(data, first_line, probe[-1])
            for start, end in _windows_backwards(len(data)):
                marks = _training_marks(formats, data, start, end)
                if total:
                    marks = [mark for mark in marks if mark[2] == total] or [mark for mark in marks if not mark[2]]
                if marks:
                    return _mark(data, first_line, marks[-1])
        return None
