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
