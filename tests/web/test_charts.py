from datetime import date, timedelta

import pytest

from app.web.charts import (
    Bar,
    DayCount,
    axis_ticks,
    bar_chart,
    categories_by_volume,
    nice_ceiling,
    run_progress_bar,
    share_bar,
    stacked_daily_chart,
    tick_label,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1.0), (0.7, 1.0), (1, 1.0), (1.2, 2.0), (2.2, 2.5), (3, 5.0), (7, 10.0), (130, 200.0), (0.03, 0.05)],
)
def test_nice_ceiling_rounds_up_to_1_2_2p5_or_5_times_a_power_of_ten(value, expected):
    assert nice_ceiling(value) == pytest.approx(expected)


def test_axis_ticks_start_at_zero_and_reach_the_maximum():
    ticks = axis_ticks(37)
    assert ticks[0] == 0
    assert ticks[-1] >= 37
    assert len(ticks) <= 6
    assert all(tick == int(tick) for tick in ticks)


def test_axis_ticks_of_an_empty_chart_are_zero_and_one():
    assert axis_ticks(0) == [0, 1]


def test_axis_ticks_can_be_fractional_for_losses():
    ticks = axis_ticks(0.8, whole=False)
    assert ticks[-1] >= 0.8
    assert ticks[1] < 1


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (12, "12"), (1500, "1.5k"), (20000, "20k"), (0.25, "0.25")])
def test_tick_labels_are_short(value, text):
    assert tick_label(value) == text


def test_bar_chart_draws_one_bar_per_item_longest_for_the_largest_value():
    svg = bar_chart([Bar("GPU OOM", 10, "#d1495b"), Bar("NaN loss", 5, "#e07a1f")], label="By category")
    assert svg.count("<rect") == 2
    assert 'role="img"' in svg
    assert 'aria-label="By category: GPU OOM 10, NaN loss 5"' in svg
    assert 'width="322"' in svg and 'width="161"' in svg


def test_bar_chart_makes_bars_with_href_links():
    svg = bar_chart([Bar("GPU OOM", 3, "#d1495b", href="/?category=gpu_oom&team=a")], label="x")
    assert '<a href="/?category=gpu_oom&amp;team=a"' in svg


def test_bar_chart_escapes_labels():
    svg = bar_chart([Bar("<script>alert(1)</script>", 1, "#000000")], label="<b>")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "<b>" not in svg


def test_bar_chart_without_bars_says_so():
    assert "No failures in this window" in bar_chart([], label="By stage")


def test_categories_by_volume_puts_the_most_frequent_first():
    day = date(2026, 3, 1)
    counts = [DayCount(day, "nan_loss", 1), DayCount(day, "gpu_oom", 2), DayCount(day, "nan_loss", 3)]
    assert categories_by_volume(counts) == ["nan_loss", "gpu_oom"]


def test_stacked_daily_chart_shows_every_day_of_the_window_and_stacks_categories():
    first = date(2026, 3, 1)
    counts = [
        DayCount(first, "gpu_oom", 2),
        DayCount(first, "nan_loss", 1),
        DayCount(first + timedelta(2), "gpu_oom", 4),
    ]
    svg = stacked_daily_chart(counts, first_day=first, last_day=first + timedelta(days=6), label="Per day")
    assert svg.count("<rect") == 3
    assert "2026-03-01 · GPU out of memory: 2" in svg
    assert "2026-03-03 · GPU out of memory: 4" in svg
    assert "7 failures over 7 days" in svg
    assert "Mar 01" in svg


def test_stacked_daily_chart_ignores_counts_outside_the_window():
    first = date(2026, 3, 1)
    svg = stacked_daily_chart([DayCount(date(2025, 1, 1), "gpu_oom", 9)], first_day=first, last_day=first, label="x")
    assert "<rect" not in svg


def test_share_bar_splits_proportionally():
    svg = share_bar([Bar("loading", 1, "#7b2cbf"), Bar("early", 3, "#e07a1f"), Bar("later", 0, "#ccc")], label="s")
    assert "loading: 1 (25 %)" in svg
    assert "early: 3 (75 %)" in svg
    assert svg.count("<rect") == 3  # the track and two non-empty segments


def test_run_progress_bar_marks_the_step_of_death():
    svg = run_progress_bar(853, 1900)
    assert "Died at step 853 of 1,900 (45 % of the run)" in svg
    assert "step 100" in svg
    assert 'class="progress-death"' in svg


def test_run_progress_bar_leaves_out_the_early_mark_on_short_runs():
    assert "step 100" not in run_progress_bar(10, 200)


def test_run_progress_bar_clamps_a_step_past_the_total():
    assert "(100 % of the run)" in run_progress_bar(2100, 2000)


def test_fitted_ticks_surround_the_data_with_round_values():
    from app.web.charts import fitted_ticks

    assert fitted_ticks(1.93, 2.41) == [1.8, 2.0, 2.2, 2.4, 2.6]
    assert fitted_ticks(0.0, 7.5) == [0.0, 2.0, 4.0, 6.0, 8.0]
    flat = fitted_ticks(3.0, 3.0)
    assert flat[0] < 3.0 < flat[-1]
