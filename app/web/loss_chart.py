"""The loss curve read from a log, as inline SVG, with the NaN/Inf and the first spike marked."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from app.diagnosis.model import LossPoint
from app.web.charts import axis_ticks, fitted_ticks, gridlines, tick_label
from app.web.svg import element, svg_document

SPIKE_FACTOR = 4.0  # a loss this many times the median of the points before it is a spike
SPIKE_WINDOW = 10  # how many earlier points that median is taken over (at least 5 needed)
MAX_CURVE_POINTS = 600  # longer curves are thinned, keeping each bucket's lowest and highest loss
LOG_SCALE_RATIO = 100.0  # a curve spanning more than this factor is drawn on a log scale


@dataclass(frozen=True, slots=True)
class LossMarks:
    """What the loss chart points out: where the loss first stopped being a number, the first spike."""

    first_non_finite: LossPoint | None
    spike: LossPoint | None


def is_finite_loss(point: LossPoint) -> bool:
    """True when the loss is a real number (not NaN, not ±inf)."""
    return math.isfinite(point.loss)


def find_loss_marks(points: Sequence[LossPoint]) -> LossMarks:
    """The first NaN/Inf loss, and the first loss far above the median of the losses before it."""
    first_non_finite = next((point for point in points if not is_finite_loss(point)), None)
    spike = None
    recent: list[float] = []
    for point in points:
        if not is_finite_loss(point):
            continue
        if len(recent) >= SPIKE_WINDOW // 2 and point.loss > SPIKE_FACTOR * statistics.median(recent) > 0:
            spike = point
            break
        recent = [*recent, point.loss][-SPIKE_WINDOW:]
    return LossMarks(first_non_finite=first_non_finite, spike=spike)


def thin_curve(points: Sequence[LossPoint], *, max_points: int = MAX_CURVE_POINTS) -> list[LossPoint]:
    """At most about max_points points, keeping each bucket's extremes and every non-finite loss."""
    if len(points) <= max_points:
        return list(points)
    bucket_size = math.ceil(len(points) / (max_points // 2))
    kept: list[LossPoint] = []
    for start in range(0, len(points), bucket_size):
        bucket = points[start : start + bucket_size]
        finite = [index for index, point in enumerate(bucket) if is_finite_loss(point)]
        extremes = (
            {min(finite, key=lambda i: bucket[i].loss), max(finite, key=lambda i: bucket[i].loss)} if finite else set()
        )
        kept.extend(point for index, point in enumerate(bucket) if index in extremes or not is_finite_loss(point))
    return kept


def loss_curve_chart(points: Sequence[LossPoint], *, label: str = "Training loss") -> Markup:
    """The loss read from the log, by step, with the first NaN/Inf and the first spike marked."""
    if not points:
        return Markup("")
    width, height, left, right, top, bottom = 640, 240, 52, 16, 24, 28
    shown = thin_curve(points)
    marks = find_loss_marks(points)
    finite = [point for point in shown if is_finite_loss(point)]
    low_step = min(point.step for point in shown)
    high_step = max(max(point.step for point in shown), low_step + 1)
    losses = [point.loss for point in finite] or [1.0]
    log_scale = min(losses) > 0 and max(losses) / min(losses) > LOG_SCALE_RATIO
    if log_scale:
        ticks = [
            10.0**power for power in range(math.floor(math.log10(min(losses))), math.ceil(math.log10(max(losses))) + 1)
        ]
    else:
        ticks = fitted_ticks(min(losses), max(losses))
    scale: Callable[[float], float] = math.log10 if log_scale else float
    low, high = scale(ticks[0]), scale(ticks[-1])
    if high - low < 1e-9:
        high = low + 1.0

    def x_of(step: int) -> float:
        return left + (width - left - right) * (step - low_step) / (high_step - low_step)

    def y_of(loss: float) -> float:
        share = (scale(loss) - low) / (high - low)
        return top + (height - top - bottom) * (1 - min(max(share, 0.0), 1.0))

    parts = [gridlines(ticks, y_of, left=left, right=width - right, label_of=tick_label)]
    for step in axis_ticks(high_step, count=5)[1:]:
        if low_step <= step <= high_step:
            parts.append(
                element(
                    "text",
                    tick_label(step),
                    x=x_of(int(step)),
                    y=height - 8,
                    class_="chart-axis",
                    text_anchor="middle",
                )
            )
    if finite:
        path = " ".join(
            f"{'M' if index == 0 else 'L'}{x_of(p.step):.1f} {y_of(p.loss):.1f}" for index, p in enumerate(finite)
        )
        parts.append(element("path", d=path, class_="loss-line"))
    if marks.first_non_finite is not None:
        x = x_of(marks.first_non_finite.step)
        text = f"{_loss_name(marks.first_non_finite.loss)} at step {marks.first_non_finite.step:,}"
        parts.append(element("line", x1=x, x2=x, y1=top, y2=height - bottom, class_="loss-nan"))
        parts.append(_mark_label(text, x=x, y=top - 8, width=width))
    if marks.spike is not None:
        x, y = x_of(marks.spike.step), y_of(marks.spike.loss)
        parts.append(element("circle", cx=x, cy=y, r=5, class_="loss-spike"))
        parts.append(_mark_label(f"spike at step {marks.spike.step:,}", x=x, y=max(y, top + 10), width=width))
    return svg_document(
        Markup("").join(parts),
        width=width,
        height=height,
        label=_loss_summary(label, points, marks),
        class_="chart chart-loss",
    )


def _mark_label(text: str, *, x: float, y: float, width: float) -> Markup:
    """A mark's label on the side of the mark with room for it, so it never runs out of the chart."""
    if x > width / 2:
        return element("text", text, x=x - 8, y=y, class_="loss-mark-label", text_anchor="end")
    return element("text", text, x=x + 8, y=y, class_="loss-mark-label")


def _loss_summary(label: str, points: Sequence[LossPoint], marks: LossMarks) -> str:
    finite = [point for point in points if is_finite_loss(point)]
    pieces = [f"{label}: {len(points)} points"]
    if finite:
        pieces.append(
            f"from {finite[0].loss:.4g} at step {finite[0].step} to {finite[-1].loss:.4g} at step {finite[-1].step}"
        )
    if marks.spike is not None:
        pieces.append(f"spike to {marks.spike.loss:.4g} at step {marks.spike.step}")
    if marks.first_non_finite is not None:
        pieces.append(f"{_loss_name(marks.first_non_finite.loss)} from step {marks.first_non_finite.step}")
    return ", ".join(pieces)


def _loss_name(loss: float) -> str:
    return "NaN" if math.isnan(loss) else ("+Inf" if loss > 0 else "-Inf")
