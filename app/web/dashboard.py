"""What the dashboard shows, computed from counts: charts, the cheap-to-catch share, the legend."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from markupsafe import Markup

from app.store.repositories.page_views import DayTally, OriginTally
from app.web.categories import category_color, category_label, stage_color, stage_label
from app.web.charts import Bar, DayCount, bar_chart, categories_by_volume, share_bar, stacked_daily_chart
from app.web.filters import DashboardWindow

CHEAP_STAGES = ("load", "early")  # died while loading or in the first 100 steps: cheap to catch earlier


@dataclass(frozen=True, slots=True)
class DashboardView:
    """The dashboard's figures and charts for one team and window."""

    total: int
    cheap: int
    cheap_percent: int
    loading: int
    early: int
    categories_seen: int
    category_chart: Markup
    stage_chart: Markup
    daily_chart: Markup
    cheap_chart: Markup
    legend: list[tuple[str, str]]


def most_frequent_first(counts: Counter[str]) -> list[tuple[str, int]]:
    """(key, count) pairs, the largest count first, ties by key."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def dashboard_view(window: DashboardWindow, *, today: date, tallies: Sequence[DayTally]) -> DashboardView:
    """Charts whose bars link to the list page filtered the same way."""
    by_category = most_frequent_first(_sum_by(tallies, lambda tally: tally.category))
    by_stage = most_frequent_first(_sum_by(tallies, lambda tally: tally.stage))
    per_day_counts = _sum_by(tallies, lambda tally: (tally.day, tally.category))
    per_day = [DayCount(day, category, count) for (day, category), count in per_day_counts.items()]
    total = sum(count for _, count in by_category)
    stages = dict(by_stage)
    loading, early = stages.get("load", 0), stages.get("early", 0)
    cheap = loading + early
    category_bars = [
        Bar(category_label(name), count, category_color(name), href="/" + window.list_query(today, category=name))
        for name, count in by_category
    ]
    stage_bars = [
        Bar(stage_label(name), count, stage_color(name), href="/" + window.list_query(today, stage=name))
        for name, count in by_stage
    ]
    cheap_segments = [
        Bar("Died while loading", loading, stage_color("load")),
        Bar("Died in the first 100 steps", early, stage_color("early")),
        Bar("Died later or unknown", total - cheap, stage_color("unknown")),
    ]
    return DashboardView(
        total=total,
        cheap=cheap,
        cheap_percent=round(100 * cheap / total) if total else 0,
        loading=loading,
        early=early,
        categories_seen=len(by_category),
        category_chart=bar_chart(category_bars, label="Failures by category"),
        stage_chart=bar_chart(stage_bars, label="Failures by stage"),
        daily_chart=stacked_daily_chart(
            per_day, first_day=window.first_day(today), last_day=today, label="Failures per day by category"
        ),
        cheap_chart=share_bar(cheap_segments, label="Where runs died"),
        legend=[(category_label(name), name) for name in categories_by_volume(per_day)],
    )


@dataclass(frozen=True, slots=True)
class OriginRow:
    """One project, cluster or user on the dashboard (origin None: runs that did not say)."""

    origin: str | None
    count: int
    cheap_percent: int
    top_category: str
    last_seen: datetime


def origin_rows(tallies: Sequence[OriginTally], *, limit: int) -> list[OriginRow]:
    """The origins with the most failures first (those that did not say last among equals), each with its
    cheap-to-catch share and its most common category."""
    grouped: dict[str | None, list[OriginTally]] = {}
    for tally in tallies:
        grouped.setdefault(tally.origin, []).append(tally)
    rows = []
    for origin, own in grouped.items():
        count = sum(tally.count for tally in own)
        cheap = sum(tally.count for tally in own if tally.stage in CHEAP_STAGES)
        top_category = most_frequent_first(_sum_by(own, lambda tally: tally.category))[0][0]
        rows.append(OriginRow(origin, count, round(100 * cheap / count), top_category,
                              max(tally.last_seen for tally in own)))
    rows.sort(key=lambda row: (-row.count, row.origin is None, row.origin or ""))
    return rows[:limit]


def _sum_by(tallies: Sequence[Any], key: Callable[[Any], Any]) -> Counter[Any]:
    counts: Counter[Any] = Counter()
    for tally in tallies:
        counts[key(tally)] += tally.count
    return counts
