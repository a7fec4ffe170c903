from collections import Counter
from datetime import date

from app.store.repositories.page_views import DayTally
from app.web.dashboard import dashboard_view, most_frequent_first
from app.web.filters import DashboardWindow

TODAY = date(2026, 3, 7)


def test_the_dashboard_adds_up_categories_stages_and_days_from_one_tally():
    tallies = [
        DayTally(date(2026, 3, 1), "gpu_oom", "mid_run", 3),
        DayTally(date(2026, 3, 1), "gpu_oom", "early", 1),
        DayTally(date(2026, 3, 2), "data_error", "load", 2),
        DayTally(date(2026, 3, 7), "nan_loss", "mid_run", 2),
    ]
    view = dashboard_view(DashboardWindow(team="vision", days=7), today=TODAY, tallies=tallies)
    assert view.total == 8
    assert (view.loading, view.early, view.cheap) == (2, 1, 3)
    assert view.cheap_percent == 38
    assert view.categories_seen == 3
    assert "GPU out of memory: 4" in view.category_chart
    assert "Mid-run: 5" in view.stage_chart
    assert 'href="/?team=vision&amp;category=gpu_oom&amp;since=2026-03-01&amp;until=2026-03-07"' in view.category_chart
    assert "8 failures over 7 days" in view.daily_chart
    assert "2026-03-01 · GPU out of memory: 4" in view.daily_chart
    assert [name for _, name in view.legend] == ["gpu_oom", "data_error", "nan_loss"]


def test_an_empty_window_has_no_share_and_says_so():
    view = dashboard_view(DashboardWindow(), today=TODAY, tallies=[])
    assert (view.total, view.cheap_percent) == (0, 0)
    assert "No failures in this window" in view.category_chart


def test_most_frequent_first_breaks_ties_by_name():
    assert most_frequent_first(Counter({"b": 2, "a": 2, "c": 5})) == [("c", 5), ("a", 2), ("b", 2)]
