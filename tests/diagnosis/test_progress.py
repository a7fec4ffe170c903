"""Progress read from trainer output: loss values sampled from short pasted excerpts."""

from __future__ import annotations

import math

from app.diagnosis.frameworks import load_framework_set
from app.diagnosis.progress import ProgressTracker

_FORMATS = load_framework_set().step_formats


def test_each_loss_value_is_taken_once_when_another_loss_word_follows_it_closely() -> None:
    lines = [
        f" iteration {step}/ 500 | lm loss: {value} | loss scale: 1.0 | grad norm: 0.9 |"
        for step, value in ((10, "3.1E+00"), (20, "2.8E+00"), (30, "nan"))
    ] + [" iteration 40/ 500 | loss: 0.51, loss_scale: 1024"]
    tracker = ProgressTracker(_FORMATS)
    tracker.feed("\n".join(lines).encode(), 1, {"progress", "loss", "bad_loss"})
    progress = tracker.finish()
    finite = [(point.step, point.loss) for point in progress.loss_curve if math.isfinite(point.loss)]
    assert finite == [(10, 3.1), (20, 2.8), (40, 0.51)]
    assert progress.first_bad_loss is not None and progress.first_bad_loss.point.step == 30


def test_a_bar_on_its_own_line_is_read_whatever_the_line_before_it() -> None:
    for before in ("{'loss': 3.1201, 'learning_rate': 4.9e-05, 'epoch': 0.05}", "  Total optimization steps = 1,776"):
        tracker = ProgressTracker(_FORMATS)
        log = f"{before}\n 19%|#9        | 340/1776 [05:33<4:45:20,  1.02it/s]RuntimeError: CUDA error\n"
        tracker.feed(log.encode(), 1, {"progress"})
        assert tracker.finish().step == 340, before


def _bars(steps: range, total: int, description: str = "Train") -> str:
    return "".join(f"{description}: {100 * step // total:3d}%|##        | {step}/{total} [00:{step % 60:02d}<01:00]\n"
                   for step in steps)


def test_the_last_step_is_the_last_bar_of_the_run_not_of_an_evaluation_after_it() -> None:
    """The run's total picks the training bar, however long the evaluation's bars run after it."""
    for eval_steps in (3, 40, 4000):  # within the block's last few KB, and far past them
        log = _bars(range(1, 854), 1900) + _bars(range(1, eval_steps + 1), 5000, "")  # a bar with no description
        tracker = ProgressTracker(_FORMATS)
        tracker.feed(log.encode(), 1, {"progress"})
        progress = tracker.finish()
        assert (progress.step, progress.total_steps, progress.step_line) == (853, 1900, 853), eval_steps


def test_the_first_step_mark_is_the_first_bar_of_the_block() -> None:
    log = "loading shards\n" * 2000 + _bars(range(5, 40), 1900)
    tracker = ProgressTracker(_FORMATS)
    tracker.feed(log.encode(), 1, {"progress"})
    assert tracker.finish().first_training_line == 2001
    short = _bars(range(5, 40), 1900)
    tracker = ProgressTracker(_FORMATS)
    tracker.feed(short.encode(), 1, {"progress"})
    assert tracker.finish().first_training_line == 1
