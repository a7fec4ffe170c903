"""The filters of the list and dashboard pages, read leniently from the URL and written back to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from app.diagnosis.taxonomy import categories, stages
from app.store.repositories.diagnoses import DiagnosisFilters
from app.store.repositories.page_views import ORIGIN_GROUPINGS, OriginGrouping

PAGE_SIZE = 50
MAX_QUERY_LENGTH = 200
DASHBOARD_WINDOWS = (7, 30, 90, 365)
DEFAULT_DASHBOARD_DAYS = 30


MAX_PAGE = 1_000_000  # far past any store's last page, and an offset every database can count to


@dataclass(frozen=True, slots=True)
class ListFilters:
    """What the list page shows: filters, grouping and page, all kept in the URL."""

    team: str | None = None
    category: str | None = None
    stage: str | None = None
    since: date | None = None
    until: date | None = None
    q: str | None = None
    project: str | None = None
    cluster: str | None = None
    user: str | None = None
    kind: str | None = None
    group: bool = False
    page: int = 1

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> ListFilters:
        """Filters from query parameters; values that make no sense are dropped, not errors."""
        category = params.get("category") or None
        stage = params.get("stage") or None
        return cls(
            team=_text(params.get("team")),
            category=category if category in categories() else None,
            stage=stage if stage in stages() else None,
            since=_date(params.get("since")),
            until=_date(params.get("until")),
            q=_text(params.get("q")),
            project=_text(params.get("project")),
            cluster=_text(params.get("cluster")),
            user=_text(params.get("user")),
            kind=_text(params.get("kind")),
            group=params.get("group") in ("1", "on", "true", "kind"),
            page=min(max(_int(params.get("page")) or 1, 1), MAX_PAGE),
        )

    def query_string(self, **changes: Any) -> str:
        """The URL query for these filters with some changed ("" when all are defaults)."""
        changed = replace(self, **changes)
        pairs: list[tuple[str, str]] = []
        for field in fields(changed):
            value = getattr(changed, field.name)
            if value in (None, False, "") or (field.name == "page" and value == 1):
                continue
            pairs.append((field.name, "1" if value is True else str(value)))
        return f"?{urlencode(pairs)}" if pairs else ""

    @property
    def narrowed(self) -> bool:
        """True when any filter (not grouping or paging) is set."""
        return any((self.team, self.category, self.stage, self.since, self.until, self.q, self.project,
                    self.cluster, self.user, self.kind))

    @property
    def received_from(self) -> datetime | None:
        """The first moment of `since` (UTC)."""
        return day_start(self.since) if self.since else None

    @property
    def received_before(self) -> datetime | None:
        """The moment after the last of `until` (UTC): the date range includes both ends."""
        return day_start(self.until + timedelta(days=1)) if self.until else None

    @property
    def offset(self) -> int:
        """How many rows come before this page."""
        return (self.page - 1) * PAGE_SIZE

    def store_filters(self, *, visible_team: str | None) -> DiagnosisFilters:
        """The store's filters for this page, within what the viewer may see."""
        return DiagnosisFilters(
            visible_team=visible_team,
            team=self.team,
            category=self.category,
            stage=self.stage,
            since=self.received_from,
            until=self.received_before,
            text=self.q,
            project=self.project,
            cluster=self.cluster,
            user=self.user,
        )


@dataclass(frozen=True, slots=True)
class DashboardWindow:
    """The team and the last N days the dashboard covers, kept in the URL."""

    team: str | None = None
    days: int = DEFAULT_DASHBOARD_DAYS
    by: OriginGrouping = "project"

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> DashboardWindow:
        """A window from query parameters; an unknown window length or grouping falls back to the default."""
        days = _int(params.get("days"))
        by: OriginGrouping = next((name for name in ORIGIN_GROUPINGS if name == params.get("by")), "project")
        return cls(team=_text(params.get("team")), days=days if days in DASHBOARD_WINDOWS else DEFAULT_DASHBOARD_DAYS,
                   by=by)

    def first_day(self, today: date) -> date:
        """The first day the window covers, ending today."""
        return today - timedelta(days=self.days - 1)

    def store_filters(self, today: date, *, visible_team: str | None) -> DiagnosisFilters:
        """The store's filters for the window ending today, within what the viewer may see."""
        return DiagnosisFilters(
            visible_team=visible_team,
            team=self.team,
            since=day_start(self.first_day(today)),
            until=day_start(today + timedelta(days=1)),
        )

    def list_query(self, today: date, **filters: str) -> str:
        """The list page's URL query for this window narrowed by more filters (a chart bar's link)."""
        narrowed = ListFilters(team=self.team, since=self.first_day(today), until=today)
        return narrowed.query_string(**filters)

    def origin_query(self, today: date, origin: str) -> str:
        """The list page's URL query for this window and one project, cluster or user (by `by`)."""
        return self.list_query(today, **{self.by: origin})

    def query_string(self, **changes: Any) -> str:
        """The dashboard's own URL query with some changed."""
        changed = replace(self, **changes)
        return "?" + urlencode([(name, value) for name, value in
                                (("team", changed.team), ("days", changed.days), ("by", changed.by)) if value])


def day_start(day: date) -> datetime:
    """Midnight at the start of the day, UTC."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def _text(value: str | None) -> str | None:
    """A filter's text without control characters (no text column holds a NUL) and at most MAX_QUERY_LENGTH."""
    cleaned = "".join(char for char in (value or "") if char >= " " or char == "\t").strip()[:MAX_QUERY_LENGTH]
    return cleaned or None


def _date(value: str | None) -> date | None:
    """A filter's date; the last day there is cannot be a range's end (the day after it does not exist)."""
    try:
        parsed = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return parsed if parsed is None or parsed < date.max else None


def positive_int(value: str | None) -> int | None:
    """A query parameter as a number ≥ 1, or None when it is missing or not one."""
    number = _int(value)
    return number if number is not None and number >= 1 else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
