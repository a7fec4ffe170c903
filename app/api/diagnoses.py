"""Routes of /api/v1/diagnoses: upload a log, list, read one, read its log, re-diagnose."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import State

from app.api.deps import SessionDep, SettingsDep, TeamScopeDep
from app.api.queries import ListQuery
from app.api.schemas import (
    NO_CONTROL_CHARACTERS,
    CreatedDiagnosisOut,
    DiagnosisOut,
    DiagnosisPage,
    DiagnosisSummary,
    ErrorOut,
    FailureGroupOut,
    FailureGroupPage,
    JobOut,
    UploadMetadata,
)
from app.api.uploads import UPLOAD_REQUEST_BODY, SpooledUpload, spooled_upload
from app.errors import DiagnosisTimeoutError, ForbiddenError, NotFoundError, StoreUnavailableError
from app.services.auth import TeamScope
from app.services.feedback import record_feedback
from app.services.ingest import DEFAULT_TEAM, IngestMeta, ingest_and_commit
from app.services.ingest_jobs import fail_job, job_for_team, queue_job
from app.services.rediagnose import rediagnose_one
from app.store.log_blobs import iter_log
from app.store.models import DiagnosisRecord
from app.store.repositories import diagnoses, log_text
from app.store.repositories.feedback import feedback_for

router = APIRouter(prefix="/diagnoses", tags=["diagnoses"])

ResultT = TypeVar("ResultT")
DiagnosisId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
HARD_CAP_GRACE_SECONDS = 30.0
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 413, 415, 422, 503)
}


@router.post(
    "",
    status_code=201,
    response_model=CreatedDiagnosisOut,
    responses=ERRORS | {
        200: {"model": CreatedDiagnosisOut, "description": "This team had already sent the same log"},
        202: {"model": JobOut, "description": "A big log (over background_log_bytes): diagnosed in a background "
              "job; follow the Location header"},
    },
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
    summary="Diagnose and store a log",
)
async def create_diagnosis(
    request: Request, response: Response, metadata: Annotated[UploadMetadata, Query()], scope: TeamScopeDep
) -> CreatedDiagnosisOut | JSONResponse:
    """201 with the new diagnosis; 200 with the existing one (`created: false`) when the same log is sent again."""
    state = request.app.state
    async with spooled_upload(
        request,
        max_bytes=state.settings.max_upload_bytes,
        max_decompressed_bytes=min(state.settings.max_decompressed_bytes, state.settings.max_upload_bytes),
        spool_dir=state.settings.upload_spool_dir,
        idle_seconds=state.settings.upload_idle_timeout_seconds,
    ) as upload:
        meta = _ingest_meta(metadata, upload, scope)
        if upload.path.stat().st_size > state.settings.background_log_bytes:
            return await _queue_in_background(state, upload.path, meta)
        small = _is_small_plain_log(upload.path, state.settings.small_log_bytes)
        lane = state.small_log_limiter if small else state.diagnose_limiter
        answer = await _off_loop(state, partial(_ingest, state, upload.path, meta), limiter=lane)
    response.status_code = 201 if answer.created else 200
    return answer


async def _queue_in_background(state: State, upload: Path, meta: IngestMeta) -> JSONResponse:
    """202 Accepted with the job to follow (its Location): big logs never hold a request, or small ones up."""
    job_id = await anyio.to_thread.run_sync(
        partial(queue_job, state.session_factory, upload=upload, meta=meta, settings=state.settings)
    )
    try:
        await state.job_queue.submit(job_id)
    except StoreUnavailableError as error:
        await anyio.to_thread.run_sync(fail_job, state.session_factory, job_id, error)
        raise
    with state.session_factory() as session:
        job = job_for_team(session, job_id, visible_team=None)
        assert job is not None, "the job was just committed"
        body = JobOut.from_job(job, public_url=state.settings.base_url)
    # Location is relative, so that it holds behind any proxy; the body's URLs follow public_url
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": f"/api/v1/jobs/{job_id}"})


@router.get("", response_model=DiagnosisPage | FailureGroupPage, responses=ERRORS, summary="List diagnoses")
def list_diagnoses(
    session: SessionDep, scope: TeamScopeDep, settings: SettingsDep, query: Annotated[ListQuery, Query()]
) -> DiagnosisPage | FailureGroupPage:
    """Newest first; with `group_by=fingerprint`, one entry per failure kind, most recently seen first."""
    filters = query.filters(scope)
    limit, offset = query.limit, query.offset
    if query.group_by == "fingerprint":
        groups = diagnoses.list_failure_groups(session, filters, limit=limit, offset=offset)
        return FailureGroupPage(
            groups=[
                FailureGroupOut.from_group(
                    matching=group.matching, latest=group.latest, kind=group.kind, public_url=settings.base_url
                )
                for group in groups.items
            ],
            total=groups.total,
            limit=limit,
            offset=offset,
        )
    page = diagnoses.list_diagnoses(session, filters, limit=limit, offset=offset)
    matches = log_text.first_matches(session, query.q, [record.id for record in page.items]) if query.q else {}
    return DiagnosisPage(
        items=[DiagnosisSummary.from_record(record, public_url=settings.base_url, log_match=matches.get(record.id))
               for record in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@router.get("/{diagnosis_id}", response_model=DiagnosisOut, responses=ERRORS, summary="One diagnosis")
def get_diagnosis(
    diagnosis_id: DiagnosisId, session: SessionDep, scope: TeamScopeDep, settings: SettingsDep
) -> DiagnosisOut:
    """The diagnosis and its job metadata; 404 also for another team's diagnosis."""
    return DiagnosisOut.from_record(_visible(session, diagnosis_id, scope), public_url=settings.base_url)


@router.get(
    "/{diagnosis_id}/log",
    response_class=StreamingResponse,
    responses=ERRORS | {200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="The stored log, secrets redacted",
)
def get_log(diagnosis_id: DiagnosisId, request: Request, session: SessionDep, scope: TeamScopeDep) -> StreamingResponse:
    """The log as it was submitted, decompressed, with secrets replaced by [REDACTED:kind]."""
    record = _visible(session, diagnosis_id, scope)
    return StreamingResponse(
        _stream_log(request.app.state.session_factory, record.id),
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="diagnosis-{record.id}.log"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/{diagnosis_id}/rediagnose", response_model=DiagnosisOut, responses=ERRORS, summary="Diagnose the stored log again"
)
async def rediagnose(diagnosis_id: DiagnosisId, request: Request, scope: TeamScopeDep) -> DiagnosisOut:
    """Run the stored log through the current signatures; the answer names their version."""
    state = request.app.state
    return await _off_loop(state, partial(_rediagnose, state, diagnosis_id, scope))


class FeedbackIn(BaseModel):
    """`right`, or `wrong` with the category it really was and, when known, the setting that fixed it."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["right", "wrong"]
    category: str | None = Field(default=None, max_length=64)
    parameter: str | None = Field(default=None, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    author: str | None = Field(default=None, max_length=200, pattern=NO_CONTROL_CHARACTERS)


class FeedbackOut(BaseModel):
    id: int
    verdict: str
    category: str | None
    parameter: str | None
    author: str
    source: str
    created_at: datetime


@router.post("/{diagnosis_id}/feedback", status_code=201, response_model=FeedbackOut, responses=ERRORS,
             summary="Say whether a diagnosis was right")
def create_feedback(
    diagnosis_id: DiagnosisId, body: FeedbackIn, session: SessionDep, scope: TeamScopeDep
) -> FeedbackOut:
    """Stored with who said it (the `author` given, else the token's team); counted in the dashboard's
    precision per signature."""
    feedback = record_feedback(
        session, diagnosis_id=diagnosis_id, visible_team=scope.team, verdict=body.verdict, category=body.category,
        parameter=body.parameter, author=body.author or (f"team {scope.team}" if scope.team else "anonymous"),
        source="api",
    )
    return FeedbackOut.model_validate(feedback, from_attributes=True)


@router.get("/{diagnosis_id}/feedback", response_model=list[FeedbackOut], responses=ERRORS,
            summary="What people said about a diagnosis")
def list_feedback(diagnosis_id: DiagnosisId, session: SessionDep, scope: TeamScopeDep) -> list[FeedbackOut]:
    record = _visible(session, diagnosis_id, scope)
    return [FeedbackOut.model_validate(item, from_attributes=True) for item in feedback_for(session, record.id)]


def _visible(session: Session, diagnosis_id: int, scope: TeamScope) -> DiagnosisRecord:
    record = diagnoses.get_diagnosis(session, diagnosis_id, visible_team=scope.team)
    if record is None:
        raise NotFoundError(f"no diagnosis {diagnosis_id}")
    return record


def _ingest_meta(metadata: UploadMetadata, upload: SpooledUpload, scope: TeamScope) -> IngestMeta:
    """Query parameters and form fields together (form fields win), checked, in the caller's team."""
    try:
        merged = UploadMetadata.model_validate({**metadata.model_dump(exclude_none=True), **upload.fields})
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_context=False)) from None
    if scope.team is not None and merged.team not in (None, scope.team):
        raise ForbiddenError(f"this token belongs to team {scope.team!r}; it cannot send logs for {merged.team!r}")
    return IngestMeta(
        team=merged.team or scope.team or DEFAULT_TEAM,
        job_id=merged.job_id,
        project=merged.project,
        cluster=merged.cluster,
        user=merged.user,
        exit_code=merged.exit_code,
        filename=upload.filename,
        source="api",
    )


def _ingest(state: State, log_path: Path, meta: IngestMeta) -> CreatedDiagnosisOut:
    result = ingest_and_commit(
        state.session_factory,
        log_path=log_path,
        meta=meta,
        diagnoser=state.diagnoser,
        settings=state.settings,
        listeners=state.ingest_listeners,
    )
    return CreatedDiagnosisOut.from_result(result, public_url=state.settings.base_url)


def _rediagnose(state: State, diagnosis_id: int, scope: TeamScope) -> DiagnosisOut:
    with state.session_factory.begin() as session:
        record = rediagnose_one(
            session, diagnosis_id, visible_team=scope.team, diagnoser=state.diagnoser, settings=state.settings
        )
        return DiagnosisOut.from_record(record, public_url=state.settings.base_url)


def _is_small_plain_log(path: Path, small_log_bytes: int) -> bool:
    """An uncompressed log no larger than small_log_bytes: it takes a lane of its own (a small compressed file
    can still hold gigabytes)."""
    with path.open("rb") as log:
        head = log.read(4)
    return path.stat().st_size <= small_log_bytes and not head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd"))


async def _off_loop(
    state: State, work: Callable[[], ResultT], *, limiter: anyio.CapacityLimiter | None = None
) -> ResultT:
    """Run diagnosis work in a worker thread, at most max_concurrent_diagnoses at once, with a hard time cap.

    The work checks its own deadline (Settings.diagnose_timeout_seconds) and stops; this cap, a little
    later, answers 503 even if the work is stuck where it cannot check.
    """
    cap = state.settings.diagnose_timeout_seconds + HARD_CAP_GRACE_SECONDS
    try:
        with anyio.fail_after(cap):
            return await anyio.to_thread.run_sync(
                work, limiter=limiter or state.diagnose_limiter, abandon_on_cancel=True
            )
    except TimeoutError:
        raise DiagnosisTimeoutError(f"no diagnosis within {cap:g} seconds; try again later") from None


def _stream_log(session_factory: sessionmaker[Session], diagnosis_id: int) -> Iterator[bytes]:
    with session_factory() as session:
        yield from iter_log(session, diagnosis_id)
