from collections import Counter
from datetime import UTC, date, datetime

from app.store.repositories.page_views import DayTally, OriginTally
from app.web.dashboard import dashboard_view, most_frequent_first, origin_rows
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


def test_origins_are_ranked_by_failures_with_their_cheap_share_and_commonest_category():
    monday, tuesday = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)
    tallies = [
        OriginTally("llama", "gpu_oom", "mid_run", 3, monday),
        OriginTally("llama", "data_error", "load", 1, tuesday),
        OriginTally(None, "nan_loss", "early", 4, monday),
        OriginTally("vit", "nccl_timeout", "mid_run", 4, monday),
        OriginTally("bert", "gpu_oom", "early", 1, monday),
    ]
    rows = origin_rows(tallies, limit=3)
    assert [(row.origin, row.count, row.cheap_percent, row.top_category) for row in rows] == [
        ("llama", 4, 25, "gpu_oom"),
        ("vit", 4, 0, "nccl_timeout"),
        (None, 4, 100, "nan_loss"),  # runs that did not say come after the named ones of the same count
    ]
    assert rows[0].last_seen == tuesday
