"""Where the run died: load, early (first 100 steps), mid_run, or checkpoint."""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from app.diagnosis.frameworks import FRAME_KINDS, FrameKind
from app.diagnosis.progress import Progress

EARLY_STEP_LIMIT = 100

# a traceback frame behind any prefix: rank tags, timestamps, job ids
_FRAME_LINE = re.compile(r'^[^\n]{0,200}?File "[^"\n]*", line \d+, in ([\w.<>]+)', re.M)
_LAST_TRACEBACK = "Traceback (most recent call last)"
_RUNS_MAIN_MODULE = frozenset({"_run_code", "_run_module_as_main", "run_module", "run_path"})  # runpy
DEEP_COLLECTIVE_SEQUENCE = 1_000  # collectives numbered in the thousands: past setup, well into training

class StageVerdict(msgspec.Struct, frozen=True):
    stage: str
    step: int | None
    reason: str = ""  # why the stage is what it is, where the log leaves it open


def traceback_frames(context: str) -> list[str]:
    """The function names of the last traceback in the context, outermost first."""
    start = context.rfind(_LAST_TRACEBACK)
    return _FRAME_LINE.findall(context, max(start, 0))


class StageClassifier:
    """Decides the stage from the root cause's line, its traceback, the progress marks, and save markers.

    The frame names come from the framework files: a traceback whose innermost known frame sets up
    (`from_pretrained`, `load_dataset`, `__post_init__`) is `load`; one that trains, evaluates or runs a
    collective is inside the loop.
    """

    def __init__(self, frames: Mapping[FrameKind, frozenset[str]]) -> None:
        self._frames = frames

    def frame_kind(self, context: str) -> FrameKind | None:
        """What the innermost frame of the last traceback that any framework names is doing.

        A `<module>` frame called from a function is a module being imported: setup, whatever imported it
        (not the main module `python -m` runs, which runpy calls).
        """
        frames = traceback_frames(context)
        for depth, name in reversed(list(enumerate(frames))):
            if name == "<module>" and depth > 0 and frames[depth - 1] not in _RUNS_MAIN_MODULE:
                return "setup"
            short = name.rsplit(".", 1)[-1]
            for kind in FRAME_KINDS:
                if short in self._frames[kind] or name in self._frames[kind]:
                    return kind
        return None

    def during_evaluation(self, context: str) -> bool:
        """Whether the traceback before the root cause runs through an evaluation loop."""
        evaluation = self._frames["evaluation"]
        return any(name.rsplit(".", 1)[-1] in evaluation for name in traceback_frames(context))

    def _saving(self, context: str) -> bool:
        saving = self._frames["saving"]
        return any(name.rsplit(".", 1)[-1] in saving for name in traceback_frames(context))

    def classify(
        self,
        *,
        root_line: int | None,
        root_context: str,
        signature_stage: str | None,
        progress: Progress,
        save_marker_lines: list[int],
        divergence_step: int | None = None,
        setup_shown: bool = True,
        collective_sequence: int | None = None,
    ) -> StageVerdict:
        """The stage and the step at death.

        A root cause on the same line as a progress mark (a bar the error was printed after) counts as
        after it. With no progress shown, a traceback through training or evaluation frames is `early`
        and one through setup frames `load`; a collective numbered in the tens of thousands is `mid_run`.
        `load` needs evidence (setup frames, or setup lines before the error): where the log shows
        neither setup nor training, the stage is `unknown`.
        """
        if divergence_step is not None:
            return StageVerdict(_by_step(divergence_step), divergence_step)
        step = progress.step
        started_before_root = progress.training_started and (
            root_line is None
            or progress.first_training_line is None
            or progress.first_training_line <= root_line
            or (progress.training_started_line is not None and progress.training_started_line < root_line)
        )
        last_progress_line = progress.step_line or 0
        saving = any(
            last_progress_line < marker <= (root_line if root_line is not None else marker)
            for marker in save_marker_lines
        )
        if saving or self._saving(root_context):
            return StageVerdict("checkpoint", step)
        if signature_stage == "checkpoint":
            return StageVerdict("checkpoint" if started_before_root else "load", step if started_before_root else None)
        if signature_stage is not None:
            return StageVerdict(signature_stage, step if signature_stage != "load" else None)
        if started_before_root:
            return StageVerdict(_by_step(step), step)
        if root_line is None:
            return StageVerdict("unknown", None, "the log shows no error and no progress")
        kind = self.frame_kind(root_context)
        if kind in ("training", "evaluation"):
            if step is not None:  # a bar redrawn after the traceback still shows where the loop was
                return StageVerdict(_by_step(step), step)
            return StageVerdict("early", None, "the traceback runs through the training loop; no step is shown")
        if kind == "setup":
            return StageVerdict("load", None)
        if step is not None:  # the only bar comes after the error: redrawn as the process exited
            return StageVerdict(_by_step(step), step)
        if collective_sequence is not None and collective_sequence >= DEEP_COLLECTIVE_SEQUENCE:
            return StageVerdict("mid_run", None, f"collective number {collective_sequence} is deep into training")
        if setup_shown:
            return StageVerdict("load", None)
        return StageVerdict("unknown", None, "the excerpt shows no progress or setup")


def _by_step(step: int | None) -> str:
    return "mid_run" if step is not None and step > EARLY_STEP_LIMIT else "early"
