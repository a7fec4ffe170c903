"""Background jobs: how a big upload's diagnosis stands (the 202's Location)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam

from app.api.deps import SessionDep, SettingsDep, TeamScopeDep
from app.api.schemas import ErrorOut, JobOut
from app.errors import NotFoundError
from app.services.ingest_jobs import job_for_team

router = APIRouter(prefix="/jobs", tags=["diagnoses"])
JobId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")]
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut} for status in (401, 404, 422, 503)}


@router.get("/{job_id}", response_model=JobOut, responses=ERRORS, summary="A background diagnosis")
def get_job(job_id: JobId, session: SessionDep, scope: TeamScopeDep, settings: SettingsDep) -> JobOut:
    """Queued, running, done (with the diagnosis) or failed (with why); 404 also for another team's job."""
    job = job_for_team(session, job_id, visible_team=scope.team)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    return JobOut.from_job(job, public_url=settings.base_url)
