"""Where the run was: optimizer steps, totals and loss values, read from what trainers print."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from app.diagnosis.model import LossPoint
from app.diagnosis.reader import decode_line

_NUMBER = rb"(nan|-?inf|[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"

# (kind, pattern): groups are (step, total) except tqdm, which is (description, step, total).
_STEP_PATTERNS: list[tuple[str, re.Pattern[bytes]]] = [
    ("swift", re.compile(rb"'global_step/max_steps':\s*'(\d+)/(\d+)'")),
    ("megatron", re.compile(rb"\biteration\s+(\d+)\s*/\s*(\d+)\s*\|")),
    ("tqdm", re.compile(rb"(?:^|\r)([^\r\n|]{0,60}?)\s*\d{1,3}%\|[^|\r\n]{0,120}\|\s*(\d+)/(\d+)\s*\[",
                        re.M)),
    ("deepspeed", re.compile(rb"\bstep=(\d+), skipped=\d+()")),
    ("generic", re.compile(
        rb"(?<![\w/-])(?i:global[_ ]?step|step|iter(?:ation)?)(?![\w-])\s*[=:#]?\s*(\d+)(?:\s*/\s*(\d+))?"
    )),
    ("it", re.compile(rb"^\s*it\s+(\d+)\s*\|()", re.M)),
]
_ANY_PROGRESS = re.compile(b"|".join(b"(?:%s)" % pattern.pattern for _, pattern in _STEP_PATTERNS if _ != "tqdm")
                           + rb"|\d{1,3}%\|", re.M)
_TRAINING_BAR = re.compile(rb"(?i)^\s*(?:train(?:ing)?|epoch\s*\d*|steps?|iterations?|it)?\s*:?\s*$")
_EPOCH_BAR = re.compile(rb"(?i)epoch\s*(\d+)")
_LOSS = re.compile(
    rb"'loss':\s*'?" + _NUMBER + rb"'?"
    rb"|(?i:(?<![\w.])(?:lm |train[_ ]?)?loss)\s*[=:]?\s*" + _NUMBER + rb"(?![\w.])"
)
_GRAD_NORM_BAD = re.compile(rb"(?i)'?grad_norm'?\s*[=:]\s*'?(nan|inf)\b")
_TRAINING_MARKERS = re.compile(
    rb"\*\*\*\*\* Running training \*\*\*\*\*|(?i:\bstart(?:ing)? training\b|\btraining started\b)"
)
_TOTAL_STEPS = re.compile(rb"Total optimization steps\s*=\s*([\d,]+)|\bmax_steps\s*[=:]\s*'?(\d+)")
MAX_LOSS_POINTS = 2000
_LOOKBACK = 600


@dataclass(frozen=True, slots=True)
class StepMark:
    kind: str
    step: int
    total: int | None
    line: int
    training: bool


@dataclass(frozen=True, slots=True)
class LossEvent:
    """A notable loss value and the log line that shows it."""

    point: LossPoint
    line: int
    text: str
    baseline: LossPoint | None = None


@dataclass(slots=True)
class Progress:
    """What the log says about the run's progress, as of its end."""

    step: int | None = None
    total_steps: int | None = None
    step_line: int | None = None
    training_started: bool = False
    training_started_line: int | None = None
    loss_curve: list[LossPoint] = field(default_factory=list)
    first_training_line: int | None = None
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


def _line_number(data: bytes, first_line: int, offset: int) -> int:
    return first_line + data.count(b"\n", 0, offset)


def _marks_in(data: bytes, first_line: int, *, start: int = 0) -> list[StepMark]:
    """Every step mark in data[start:], in order."""
    found: list[tuple[int, StepMark]] = []
    for kind, pattern in _STEP_PATTERNS:
        for match in pattern.finditer(data, start):
            if kind == "tqdm":
                description, step_raw, total_raw = match.groups()
                training = bool(_TRAINING_BAR.match(description))
                step, total = int(step_raw), int(total_raw)
                epoch = _EPOCH_BAR.search(description)
                if epoch and total:
                    step += int(epoch.group(1)) * total
                    total = 0  # per-epoch bar: the run's total is unknown
            else:
                step_raw, total_raw = match.group(1), match.group(2)
                training, step, total = True, int(step_raw), int(total_raw) if total_raw else 0
            mark = StepMark(kind, step, total or None, _line_number(data, first_line, match.start()), training)
            found.append((match.start(), mark))
    found.sort(key=lambda item: item[0])
    return [mark for _, mark in found]


class ProgressTracker:
    """Reads progress block by block in one pass; only the last block with progress is re-read in full."""

    def __init__(self) -> None:
        self._last_progress_block: tuple[bytes, int] | None = None
        self._first_training_total: int | None = None
        self._stated_total: int | None = None
        self._training_started_line: int | None = None
        self._loss_points: list[tuple[LossPoint, int]] = []
        self._best_loss: LossPoint | None = None
        self._divergence: LossEvent | None = None
        self._first_training_line: int | None = None
        self._loss_stride = 1
        self._loss_seen = 0
        self._first_bad: LossEvent | None = None
        self._last_step_seen: int | None = None

    def feed(self, data: bytes, first_line: int) -> None:
        """Take one block of whole lines (ANSI codes already removed)."""
        if _ANY_PROGRESS.search(data) is not None:
            self._last_progress_block = (data, first_line)
            if self._first_training_total is None or self._first_training_line is None:
                for mark in _marks_in(data, first_line):
                    if mark.training and self._first_training_line is None:
                        self._first_training_line = mark.line
                    if mark.training and mark.total and self._first_training_total is None:
                        self._first_training_total = mark.total
                        break
        if self._stated_total is None and (total := _TOTAL_STEPS.search(data)):
            self._stated_total = int((total.group(1) or total.group(2)).replace(b",", b""))
        if self._training_started_line is None and (marker := _TRAINING_MARKERS.search(data)):
            self._training_started_line = _line_number(data, first_line, marker.start())
        self._read_losses(data, first_line)

    def _step_before(self, data: bytes, offset: int) -> int | None:
        window_start = max(0, offset - _LOOKBACK)
        line_start = data.rfind(b"\n", 0, offset) + 1
        line_end = data.find(b"\n", offset)
        same_line = data[line_start : line_end if line_end >= 0 else len(data)]
        for kind in ("swift", "megatron", "generic", "deepspeed", "it"):
            pattern = dict(_STEP_PATTERNS)[kind]
            if match := pattern.search(same_line):
                return int(match.group(1))
        marks = _marks_in(data[window_start:offset], 0)
        training = [mark for mark in marks if mark.training]
        return training[-1].step if training else None

    def _read_losses(self, data: bytes, first_line: int) -> None:
        for match in _LOSS.finditer(data):
            raw = match.group(1) if match.group(1) is not None else match.group(2)
            value = _to_float(raw)
            self._loss_seen += 1
            bad = not math.isfinite(value)
            if not bad and self._loss_seen % self._loss_stride:
                continue
            step = self._step_before(data, match.start())
            if step is None:
                step = (self._last_step_seen or 0) + 1
            self._last_step_seen = step
            line = _line_number(data, first_line, match.start())
            point = LossPoint(step=step, loss=value)
            if bad and self._first_bad is None:
                self._first_bad = LossEvent(point, line, _line_text(data, match.start()))
            self._loss_points.append((point, line))
            if not bad and self._divergence is None:
                self._watch_divergence(point, line, data, match.start())
            if len(self._loss_points) > MAX_LOSS_POINTS:
                self._loss_points = self._loss_points[::2]
                self._loss_stride *= 2
        if self._first_bad is None and (bad_norm := _GRAD_NORM_BAD.search(data)):
            step = self._step_before(data, bad_norm.start()) or self._last_step_seen or 0
            line = _line_number(data, first_line, bad_norm.start())
            self._first_bad = LossEvent(LossPoint(step=step, loss=math.nan), line, _line_text(data, bad_norm.start()))

    def _watch_divergence(self, point: LossPoint, line: int, data: bytes, offset: int) -> None:
        """A loss that explodes without NaN: a finite value far above the best seen before it."""
        best = self._best_loss
        if best is not None and point.loss > max(3 * best.loss, best.loss + 5) and point.loss > 8:
            self._divergence = LossEvent(point, line, _line_text(data, offset), baseline=best)
        elif best is None or point.loss < best.loss:
            self._best_loss = point

    def finish(self, *, stated_total: int | None = None) -> Progress:
        """The progress as of the end of the log; stated_total is max_steps when the run facts show it."""
        progress = Progress(
            loss_curve=[point for point, _ in self._loss_points],
            first_bad_loss=self._first_bad,
            first_training_line=self._first_training_line,
        )
        total = stated_total or self._stated_total or self._first_training_total
        if self._last_progress_block is not None:
            data, first_line = self._last_progress_block
            marks = [mark for mark in _marks_in(data, first_line) if mark.training]
            if total:
                with_total = [mark for mark in marks if mark.total == total]
                marks = with_total or [mark for mark in marks if mark.total is None or mark.total == total]
            if marks:
                last = marks[-1]
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
        progress.divergence = self._divergence
        return progress
