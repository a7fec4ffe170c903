"""GET /api/v1/stats: counts of diagnoses for dashboards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import SessionDep, TeamScopeDep
from app.api.queries import StatsQuery
from app.api.schemas import ErrorOut, StatsGroup, StatsOut
from app.store.repositories.stats import count_diagnoses_by

router = APIRouter(tags=["stats"])


@router.get("/stats", response_model=StatsOut, responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def stats(
    session: SessionDep,
    scope: TeamScopeDep,
    query: Annotated[StatsQuery, Query()],
) -> StatsOut:
    """Diagnoses matching the filters, counted per category, stage, team or day (UTC)."""
    counts = count_diagnoses_by(session, query.filters(scope), group_by=query.group_by)
    return StatsOut(
        group_by=query.group_by,
        total=sum(count for _, count in counts),
        groups=[StatsGroup(key=key, count=count) for key, count in counts],
    )
