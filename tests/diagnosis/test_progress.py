"""Progress read from trainer output: loss values sampled from short pasted excerpts."""

from __future__ import annotations

import math

import regex

from app.diagnosis.frameworks import load_framework_set
from app.diagnosis.progress import SCREEN_PATTERNS, ProgressTracker

_FORMATS = load_framework_set().step_formats


def _bad_loss_screen(data: bytes) -> dict[str, int]:
    """What the screen reports for the bad_loss pattern: where its first match ends."""
    first = regex.search(SCREEN_PATTERNS["bad_loss"], data)
    return {"bad_loss": first.end()} if first else {}


def test_each_loss_value_is_taken_once_when_another_loss_word_follows_it_closely() -> None:
    lines = [
        f" iteration {step}/ 500 | lm loss: {value} | loss scale: 1.0 | grad norm: 0.9 |"
        for step, value in ((10, "3.1E+00"), (20, "2.8E+00"), (30, "nan"))
    ] + [" iteration 40/ 500 | loss: 0.51, loss_scale: 1024"]
    tracker = ProgressTracker(_FORMATS)
    data = "\n".join(lines).encode()
    tracker.feed(data, 1, {"progress": 0, "loss": 0, **_bad_loss_screen(data)})
    progress = tracker.finish()
    finite = [(point.step, point.loss) for point in progress.loss_curve if math.isfinite(point.loss)]
    assert finite == [(10, 3.1), (20, 2.8), (40, 0.51)]
    assert progress.first_bad_loss is not None and progress.first_bad_loss.point.step == 30


def test_a_bar_on_its_own_line_is_read_whatever_the_line_before_it() -> None:
    for before in ("{'loss': 3.1201, 'learning_rate': 4.9e-05, 'epoch': 0.05}", "  Total optimization steps = 1,776"):
        tracker = ProgressTracker(_FORMATS)
        log = f"{before}\n 19%|#9        | 340/1776 [05:33<4:45:20,  1.02it/s]RuntimeError: CUDA error\n"
        tracker.feed(log.encode(), 1, {"progress": 0})
        assert tracker.finish().step == 340, before


def _bars(steps: range, total: int, description: str = "Train") -> str:
    return "".join(f"{description}: {100 * step // total:3d}%|##        | {step}/{total} [00:{step % 60:02d}<01:00]\n"
                   for step in steps)


def test_the_last_step_is_the_last_bar_of_the_run_not_of_an_evaluation_after_it() -> None:
    """The run's total picks the training bar, however long the evaluation's bars run after it."""
    for eval_steps in (3, 40, 4000):  # within the block's last few KB, and far past them
        log = _bars(range(1, 854), 1900) + _bars(range(1, eval_steps + 1), 5000, "")  # a bar with no description
        tracker = ProgressTracker(_FORMATS)
        tracker.feed(log.encode(), 1, {"progress": 0})
        progress = tracker.finish()
        assert (progress.step, progress.total_steps, progress.step_line) == (853, 1900, 853), eval_steps


def test_the_first_step_mark_is_the_first_bar_of_the_block() -> None:
    log = "loading shards\n" * 2000 + _bars(range(5, 40), 1900)
    tracker = ProgressTracker(_FORMATS)
    tracker.feed(log.encode(), 1, {"progress": 0})
    assert tracker.finish().first_training_line == 2001
    short = _bars(range(5, 40), 1900)
    tracker = ProgressTracker(_FORMATS)
    tracker.feed(short.encode(), 1, {"progress": 0})
    assert tracker.finish().first_training_line == 1


def test_the_first_nan_loss_is_read_past_a_screen_match_that_is_none() -> None:
    lines = [f"step {step} | train_loss: 1.{step:04d} | lr 1e-4" for step in range(1, 3000)]
    lines[5] = "step 6 | val_loss: nan (no eval batches)"  # the screen matches; `val_loss` is no training loss
    lines[2500] = "step 2501 | loss: nan | lr 1e-4"
    data = "\n".join(lines).encode()
    tracker = ProgressTracker(_FORMATS)
    tracker.feed(data, 1, {"loss": 0, **_bad_loss_screen(data)})
    bad = tracker.finish().first_bad_loss
    assert bad is not None and bad.line == 2501
