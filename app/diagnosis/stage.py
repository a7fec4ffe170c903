"""Where the run died: load, early (first 100 steps), mid_run, or checkpoint."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.diagnosis.progress import Progress

EARLY_STEP_LIMIT = 100

SAVE_MARKER = re.compile(
    rb"(?i)\bsaving (?:model )?checkpoint|\bsaving model (?:checkpoint )?to\b|\bsave_pretrained\b|"
    rb"\bcheckpoint global_step\d+ is about to be saved|\bsaving checkpoint at iteration\b|"
    rb"\bsaving (?:the )?(?:final )?model\b|\bwriting (?:model )?shards?\b|\bsaving model weights\b"
)
# Lines that show the run setting itself up: with them, a failure before training is a `load` failure.
LOAD_MARKER = re.compile(
    rb"Loading checkpoint shards|\bloading (?:weights )?file\b|\bLoading (?:the )?(?:model|tokenizer|dataset)\b|"
    rb"Generating \w+ split|Running tokenizer on dataset"
)
_SAVE_FRAMES = re.compile(
    r"\bin (?:save_pretrained|_save_checkpoint|save_checkpoint|_save_optimizer_and_scheduler|save_model|_save|"
    r"save|save_file|save_state|write_record|save_16bit_model|_save_zero_checkpoint|save_torch_state_dict)\b"
)
_EVALUATION_FRAMES = re.compile(
    r"\bin (?:evaluate|evaluation_loop|prediction_step|_evaluate|validation_step|eval_step)\b"
)
_TRAINING_FRAMES = re.compile(
    r"\bin (?:training_step|compute_loss|train_step|forward_backward\w*|forward_step|backward|_run_epoch|"
    r"_next_data|__next__|optimizer_step|step|training_loop|run_training_batch|fit_loop|advance)\b"
)


@dataclass(frozen=True, slots=True)
class StageVerdict:
    stage: str
    step: int | None


class StageClassifier:
    """Decides the stage from the root cause's line, the progress marks, and save markers around it."""

    def classify(
        self,
        *,
        root_line: int | None,
        root_context: str,
        signature_stage: str | None,
        progress: Progress,
        save_marker_lines: list[int],
        divergence_step: int | None = None,
        root_is_symptom: bool = False,
        setup_shown: bool = True,
    ) -> StageVerdict:
        """The stage and the step at death.

        A root cause on the same line as a progress mark (a bar the error was printed after) counts as
        after it. With no progress shown, a traceback through training or evaluation frames is `early`;
        a symptom alone (an exit status, a launcher summary) in a log that shows no setup is `unknown`.
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
        if saving or _SAVE_FRAMES.search(root_context):
            return StageVerdict("checkpoint", step)
        if signature_stage == "checkpoint":
            return StageVerdict("checkpoint" if started_before_root else "load", step if started_before_root else None)
        if signature_stage is not None:
            return StageVerdict(signature_stage, step if signature_stage != "load" else None)
        if started_before_root:
            return StageVerdict(_by_step(step), step)
        if root_line is None:
            return StageVerdict("unknown", None)
        if _TRAINING_FRAMES.search(root_context) or _EVALUATION_FRAMES.search(root_context):
            return StageVerdict("early", step)
        if root_is_symptom and not setup_shown:
            return StageVerdict("unknown", None)
        return StageVerdict("load", None)


def during_evaluation(root_context: str) -> bool:
    """Whether the traceback before the root cause runs through an evaluation loop."""
    return _EVALUATION_FRAMES.search(root_context) is not None


def _by_step(step: int | None) -> str:
    return "mid_run" if step is not None and step > EARLY_STEP_LIMIT else "early"
