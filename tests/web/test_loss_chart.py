import math
import re

from app.diagnosis.model import LossPoint
from app.web.loss_chart import find_loss_marks, loss_curve_chart, thin_curve


def steady_curve(count: int, *, start: int = 1) -> list[LossPoint]:
    return [LossPoint(step, 2.0 - step / (count * 2)) for step in range(start, start + count)]


def test_a_steady_curve_has_no_marks():
    marks = find_loss_marks(steady_curve(50))
    assert marks.first_non_finite is None
    assert marks.spike is None


def test_the_first_nan_is_marked():
    points = [*steady_curve(20), LossPoint(21, math.nan), LossPoint(22, math.nan)]
    assert find_loss_marks(points).first_non_finite == points[20]


def test_inf_counts_as_not_finite():
    points = [*steady_curve(5), LossPoint(6, math.inf)]
    assert find_loss_marks(points).first_non_finite == points[5]


def test_a_loss_far_above_the_recent_median_is_a_spike():
    points = [*steady_curve(30), LossPoint(31, 40.0), LossPoint(32, 1.1)]
    assert find_loss_marks(points).spike == LossPoint(31, 40.0)


def test_no_spike_is_called_before_enough_points_are_seen():
    assert find_loss_marks([LossPoint(1, 0.1), LossPoint(2, 9.0)]).spike is None


def test_thin_curve_keeps_short_curves_as_they_are():
    points = steady_curve(100)
    assert thin_curve(points) == points


def test_thin_curve_keeps_extremes_and_every_nan_of_a_long_curve():
    points = steady_curve(10_000)
    points[5_000] = LossPoint(5_001, 99.0)
    points[7_000] = LossPoint(7_001, math.nan)
    thinned = thin_curve(points, max_points=200)
    assert len(thinned) <= 220
    assert LossPoint(5_001, 99.0) in thinned
    assert any(point.step == 7_001 for point in thinned)
    assert [point.step for point in thinned] == sorted(point.step for point in thinned)


def test_loss_chart_draws_the_line_and_marks_nan_and_spike():
    points = [*steady_curve(30), LossPoint(31, 30.0), *steady_curve(10, start=32), LossPoint(42, math.nan)]
    svg = loss_curve_chart(points)
    assert 'class="loss-line"' in svg
    assert "NaN at step 42" in svg
    assert "spike at step 31" in svg
    assert 'role="img"' in svg and "NaN from step 42" in svg


def test_loss_chart_uses_a_log_scale_for_curves_spanning_orders_of_magnitude():
    points = [LossPoint(step, 10.0 ** (3 - step / 10)) for step in range(1, 60)]
    svg = loss_curve_chart(points)
    assert ">1k<" in svg and ">0.01<" in svg


def test_loss_chart_of_only_nan_still_marks_it():
    svg = loss_curve_chart([LossPoint(1, math.nan)])
    assert "NaN at step 1" in svg
    assert "loss-line" not in svg


def test_loss_chart_of_no_points_is_empty():
    assert loss_curve_chart([]) == ""


def test_the_loss_axis_fits_the_data_rather_than_starting_at_zero():
    points = [LossPoint(step, 2.4 - step / 500) for step in range(1, 251)]  # 2.4 down to 1.9
    svg = str(loss_curve_chart(points))
    labels = re.findall(r'class="chart-axis" text-anchor="end">([\d.]+)</text>', svg)
    assert labels and 1.5 <= float(labels[0]) <= 1.9 and 2.4 <= float(labels[-1]) <= 2.6


def test_mark_labels_stay_inside_the_chart():
    early_nan = [LossPoint(1, 2.0), LossPoint(2, math.nan), *[LossPoint(step, 2.0) for step in range(3, 200)]]
    late_nan = [*[LossPoint(step, 2.0) for step in range(1, 200)], LossPoint(200, math.nan)]
    for points, anchor_end in ((early_nan, False), (late_nan, True)):
        label = re.search(r'<text[^>]*class="loss-mark-label"[^>]*>', str(loss_curve_chart(points)))
        assert label is not None
        assert ('text-anchor="end"' in label.group(0)) == anchor_end
