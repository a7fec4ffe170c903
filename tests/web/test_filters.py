from datetime import UTC, date, datetime

from app.web.filters import PAGE_SIZE, DashboardWindow, ListFilters, positive_int


def test_list_filters_are_read_from_the_query():
    filters = ListFilters.from_query(
        {
            "team": " vision ",
            "category": "gpu_oom",
            "stage": "early",
            "since": "2026-03-01",
            "until": "2026-03-07",
            "q": "oom",
            "group": "1",
            "page": "3",
        }
    )
    assert filters == ListFilters(
        team="vision",
        category="gpu_oom",
        stage="early",
        since=date(2026, 3, 1),
        until=date(2026, 3, 7),
        q="oom",
        group=True,
        page=3,
    )


def test_nonsense_filter_values_are_dropped():
    filters = ListFilters.from_query({"category": "nope", "stage": "x", "since": "yesterday", "page": "-4"})
    assert filters == ListFilters()


def test_query_string_keeps_only_set_filters_and_applies_changes():
    filters = ListFilters(team="nlp", category="nan_loss", page=2)
    assert filters.query_string() == "?team=nlp&category=nan_loss&page=2"
    assert filters.query_string(page=1) == "?team=nlp&category=nan_loss"
    assert filters.query_string(group=True, page=1) == "?team=nlp&category=nan_loss&group=1"
    assert ListFilters().query_string() == ""


def test_query_string_escapes_free_text():
    assert ListFilters(q="a&b c").query_string() == "?q=a%26b+c"


def test_the_date_range_includes_both_days():
    filters = ListFilters(since=date(2026, 3, 1), until=date(2026, 3, 1))
    assert filters.received_from == datetime(2026, 3, 1, tzinfo=UTC)
    assert filters.received_before == datetime(2026, 3, 2, tzinfo=UTC)


def test_paging_offsets():
    assert ListFilters(page=3).offset == 2 * PAGE_SIZE


def test_narrowed_ignores_grouping_and_paging():
    assert not ListFilters(group=True, page=4).narrowed
    assert ListFilters(q="x").narrowed


def test_dashboard_window_accepts_only_offered_lengths():
    assert DashboardWindow.from_query({"days": "7", "team": "a"}) == DashboardWindow(team="a", days=7)
    assert DashboardWindow.from_query({"days": "13"}).days == 30


def test_dashboard_window_links_to_the_list_for_the_same_days():
    window = DashboardWindow(team="a", days=7)
    assert window.first_day(date(2026, 3, 7)) == date(2026, 3, 1)
    query = window.list_query(date(2026, 3, 7), category="gpu_oom")
    assert query == "?team=a&category=gpu_oom&since=2026-03-01&until=2026-03-07"


def test_list_filters_become_store_filters_within_the_viewers_team():
    filters = ListFilters(team="nlp", since=date(2026, 3, 1), until=date(2026, 3, 2), q="oom")
    store = filters.store_filters(visible_team="nlp")
    assert store.visible_team == "nlp"
    assert store.since == datetime(2026, 3, 1, tzinfo=UTC)
    assert store.until == datetime(2026, 3, 3, tzinfo=UTC)
    assert store.text == "oom"


def test_dashboard_window_store_filters_cover_whole_days():
    store = DashboardWindow(days=7).store_filters(date(2026, 3, 7), visible_team=None)
    assert store.since == datetime(2026, 3, 1, tzinfo=UTC)
    assert store.until == datetime(2026, 3, 8, tzinfo=UTC)


def test_positive_int_rejects_what_is_not_a_page_number():
    assert positive_int("12") == 12
    assert positive_int("0") is None
    assert positive_int("x") is None
    assert positive_int(None) is None
