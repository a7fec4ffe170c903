"""Query parameters of the list and stats routes (unknown parameters are refused, to catch typos)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.schemas import NO_CONTROL_CHARACTERS, Stage
from app.diagnosis.taxonomy import categories
from app.services.auth import TeamScope
from app.services.teams import TEAM_NAME_PATTERN
from app.store.repositories.diagnoses import DiagnosisFilters
from app.store.repositories.stats import StatsGrouping

MAX_OFFSET = 10**9


class FilterQuery(BaseModel):
    """Which diagnoses to list or count."""

    model_config = ConfigDict(extra="forbid")

    team: str | None = Field(default=None, pattern=TEAM_NAME_PATTERN)
    category: str | None = Field(default=None, description="A category id of the taxonomy")
    stage: Stage | None = None
    since: datetime | None = Field(default=None, description="Received at or after (ISO 8601; UTC if no zone)")
    until: datetime | None = Field(default=None, description="Received before (ISO 8601; UTC if no zone)")
    project: str | None = Field(default=None, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    cluster: str | None = Field(default=None, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    user: str | None = Field(default=None, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    q: str | None = Field(default=None, max_length=200, pattern=NO_CONTROL_CHARACTERS,
                          description="Text in the title, summary, job id or evidence")

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in categories():
            raise ValueError(f"unknown category {value!r}")
        return value

    @field_validator("since", "until")
    @classmethod
    def _utc_if_naive(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:  # in UTC, as the store compares; a zone can push a date past year 1 or 9999
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the date is out of range once in UTC") from None

    def filters(self, scope: TeamScope) -> DiagnosisFilters:
        """The store's filters for this query within the caller's scope."""
        return DiagnosisFilters(
            visible_team=scope.team,
            team=self.team,
            category=self.category,
            stage=self.stage,
            since=self.since,
            until=self.until,
            text=self.q or None,
            project=self.project,
            cluster=self.cluster,
            user=self.user,
        )


class ListQuery(FilterQuery):
    """Which diagnoses to list, which page, and whether to group repeats of one failure."""

    group_by: Literal["fingerprint"] | None = Field(default=None, description="One entry per failure kind")
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class StatsQuery(FilterQuery):
    """Which diagnoses to count, and by what."""

    group_by: StatsGrouping = "category"
