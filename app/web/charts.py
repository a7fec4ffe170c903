"""Charts as inline SVG, drawn on the server: pure functions from numbers to markup."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup

from app.web.categories import category_color, category_label
from app.web.svg import element, svg_document

EARLY_STEP_LIMIT = 100  # the taxonomy's boundary between `early` and `mid_run`


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar (or one segment of a share bar); `href` makes it a link."""

    label: str
    value: int
    color: str
    href: str | None = None


@dataclass(frozen=True, slots=True)
class DayCount:
    """How many diagnoses of one category were made on one day."""

    day: date
    category: str
    count: int


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n that is at least value (1 for value ≤ 0)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return float(next(factor * magnitude for factor in (1, 2, 2.5, 5, 10) if factor * magnitude >= value))


def axis_ticks(maximum: float, *, count: int = 4, whole: bool = True) -> list[float]:
    """Evenly spaced round tick values from 0 up to at least maximum (whole numbers for counts)."""
    step = nice_ceiling(maximum / count) if maximum > 0 else 1.0
    if whole:
        step = float(math.ceil(step))
    steps = max(1, math.ceil(maximum / step - 1e-9))
    return [step * index for index in range(steps + 1)]


def fitted_ticks(low: float, high: float, *, count: int = 4) -> list[float]:
    """Round tick values around the data (not from 0): a loss between 1.9 and 2.4 gets 1.9, 2.0, ... 2.4."""
    if high - low < 1e-12:
        low, high = low - max(abs(low) * 0.1, 0.05), high + max(abs(high) * 0.1, 0.05)
    step = nice_ceiling((high - low) / count)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    return [round(first + step * index, 12) for index in range(round((last - first) / step) + 1)]


def tick_label(value: float) -> str:
    """A tick value as people read it: 1200 → 1.2k, 0.25 → 0.25."""
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}".rstrip("0").rstrip(".") + "k"
    if value == int(value):
        return str(int(value))
    return f"{value:.3g}"


def bar_chart(bars: Sequence[Bar], *, label: str, width: int = 560) -> Markup:
    """Horizontal bars with their labels on the left and their values at the end."""
    row_height, label_width, value_width = 28, 190, 48
    height = max(len(bars), 1) * row_height + 8
    track = width - label_width - value_width
    biggest = max((bar.value for bar in bars), default=0) or 1
    rows = []
    for index, bar in enumerate(bars):
        top = 4 + index * row_height
        length = max(track * bar.value / biggest, 2.0 if bar.value else 0.0)
        row = (
            element("title", f"{bar.label}: {bar.value}")
            + element("text", bar.label, x=label_width - 8, y=top + 18, class_="chart-label", text_anchor="end")
            + element("rect", x=label_width, y=top + 5, width=float(length), height=18, rx=3, fill=bar.color)
            + element("text", str(bar.value), x=float(label_width + length + 6), y=top + 18, class_="chart-value")
        )
        rows.append(element("a", row, href=bar.href, class_="chart-link") if bar.href else element("g", row))
    if not bars:
        rows.append(element("text", "No failures in this window", x=8, y=22, class_="chart-empty"))
    summary = ", ".join(f"{bar.label} {bar.value}" for bar in bars) or "no data"
    return svg_document(
        Markup("").join(rows),
        width=width,
        height=height,
        label=f"{label}: {summary}",
        class_="chart chart-bars",
    )


def categories_by_volume(counts: Sequence[DayCount]) -> list[str]:
    """The categories in counts, the most frequent first (the stacking order of the daily chart)."""
    totals: dict[str, int] = {}
    for item in counts:
        totals[item.category] = totals.get(item.category, 0) + item.count
    return sorted(totals, key=lambda name: (-totals[name], name))


def stacked_daily_chart(counts: Sequence[DayCount], *, first_day: date, last_day: date, label: str) -> Markup:
    """Diagnoses per day as columns stacked by category, every day of the window shown."""
    width, height, left, right, top, bottom = 960, 260, 40, 8, 12, 28
    days = [first_day + timedelta(days=offset) for offset in range((last_day - first_day).days + 1)]
    per_day: dict[date, dict[str, int]] = {day: {} for day in days}
    for item in counts:
        if item.day in per_day:
            per_day[item.day][item.category] = per_day[item.day].get(item.category, 0) + item.count
    ticks = axis_ticks(max((sum(day.values()) for day in per_day.values()), default=0))
    plot_height = height - top - bottom
    slot = (width - left - right) / max(len(days), 1)

    def y_of(value: float) -> float:
        return top + plot_height * (1 - value / ticks[-1])

    parts = [gridlines(ticks, y_of, left=left, right=width - right, label_of=tick_label)]
    label_every = max(1, math.ceil(len(days) / 8))
    stacking_order = categories_by_volume(counts)
    for index, day in enumerate(days):
        x = left + index * slot + slot * 0.15
        stacked = 0
        for category in stacking_order:
            count = per_day[day].get(category, 0)
            if count:
                rect = element(
                    "rect",
                    x=x,
                    y=y_of(stacked + count),
                    width=slot * 0.7,
                    height=y_of(stacked) - y_of(stacked + count),
                    fill=category_color(category),
                )
                tooltip = element("title", f"{day.isoformat()} · {category_label(category)}: {count}")
                parts.append(element("g", tooltip + rect))
                stacked += count
        if index % label_every == 0:
            parts.append(
                element(
                    "text",
                    day.strftime("%b %d"),
                    x=x + slot * 0.35,
                    y=height - 8,
                    class_="chart-axis",
                    text_anchor="middle",
                )
            )
    total = sum(item.count for item in counts)
    return svg_document(
        Markup("").join(parts),
        width=width,
        height=height,
        label=f"{label}: {total} failures over {len(days)} days",
        class_="chart chart-daily",
    )


def share_bar(segments: Sequence[Bar], *, label: str, width: int = 560) -> Markup:
    """One bar split into segments proportional to their values (a 100 % stacked bar)."""
    total = sum(segment.value for segment in segments)
    parts = [element("rect", x=0, y=0, width=width, height=20, rx=4, class_="chart-track")]
    x = 0.0
    for segment in segments:
        if not total or not segment.value:
            continue
        length = width * segment.value / total
        share = f"{segment.label}: {segment.value} ({100 * segment.value / total:.0f} %)"
        parts.append(
            element(
                "g",
                element("title", share) + element("rect", x=x, y=0, width=length, height=20, fill=segment.color),
            )
        )
        x += length
    summary = ", ".join(f"{segment.label} {segment.value}" for segment in segments)
    return svg_document(
        Markup("").join(parts),
        width=width,
        height=20,
        label=f"{label}: {summary}",
        class_="chart chart-share",
    )


def run_progress_bar(step: int, total_steps: int, *, width: int = 640) -> Markup:
    """Where in the run it died: the track of all steps, filled up to the step of death."""
    height, left, right, bar_top = 46, 4, 4, 14
    track = width - left - right
    fraction = min(max(step / total_steps, 0.0), 1.0) if total_steps > 0 else 0.0
    death_x = left + track * fraction
    parts = [
        element("rect", x=left, y=bar_top, width=track, height=12, rx=6, class_="chart-track"),
        element(
            "rect",
            x=left,
            y=bar_top,
            width=max(track * fraction, 6.0),
            height=12,
            rx=6,
            class_="progress-done",
        ),
    ]
    if total_steps > EARLY_STEP_LIMIT * 4:
        early_x = left + track * EARLY_STEP_LIMIT / total_steps
        # above and across the bar only: the death marker sits below it
        parts.append(element("line", x1=early_x, x2=early_x, y1=bar_top - 4, y2=bar_top + 12, class_="progress-early"))
        parts.append(element("text", f"step {EARLY_STEP_LIMIT}", x=early_x + 4, y=bar_top - 4, class_="chart-axis"))
    parts.append(element("path", d=f"M{death_x:.1f} {bar_top + 14} l-6 10 h12 z", class_="progress-death"))
    parts.append(element("text", "0", x=left, y=height - 2, class_="chart-axis"))
    parts.append(
        element("text", f"{total_steps:,}", x=width - right, y=height - 2, class_="chart-axis", text_anchor="end")
    )
    label = f"Died at step {step:,} of {total_steps:,} ({100 * fraction:.0f} % of the run)"
    return svg_document(Markup("").join(parts), width=width, height=height, label=label, class_="chart chart-progress")


def gridlines(
    ticks: Sequence[float],
    y_of: Callable[[float], float],
    *,
    left: float,
    right: float,
    label_of: Callable[[float], str],
) -> Markup:
    """Horizontal grid lines with their tick labels on the left axis."""
    lines = []
    for tick in ticks:
        y = y_of(tick)
        lines.append(element("line", x1=left, x2=right, y1=y, y2=y, class_="chart-grid"))
        lines.append(element("text", label_of(tick), x=left - 6, y=y + 4, class_="chart-axis", text_anchor="end"))
    return Markup("").join(lines)
