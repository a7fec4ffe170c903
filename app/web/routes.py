"""The web pages: thin routes that query the store and render a template (errors render as pages too)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Form, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from app.api.deps import SettingsDep, TeamScopeDep
from app.diagnosis.model import Diagnosis
from app.diagnosis.taxonomy import categories, stages
from app.errors import AuthenticationError, NotFoundError, TrainwreckError
from app.services.auth import TOKEN_COOKIE, auth_required, resolve_scope
from app.services.feedback import record_feedback
from app.services.ingest_jobs import job_for_team
from app.services.rediagnose import preview_newest
from app.services.signature_skeleton import signature_skeleton
from app.store.log_blobs import iter_log
from app.store.repositories.diagnoses import (
    DiagnosisFilters,
    count_made_with_other_signatures,
    get_diagnosis,
    list_failure_groups,
)
from app.store.repositories.feedback import feedback_for, precision_by_signature
from app.store.repositories.log_text import LineMatch, first_matches
from app.store.repositories.page_views import (
    ORIGIN_GROUPINGS,
    list_summaries,
    other_teams_with_kind,
    tally_by_day_category_and_stage,
    tally_by_origin,
    top_failure_kinds,
    unknown_cluster_lines,
    unknown_clusters,
)
from app.store.repositories.teams import list_team_names
from app.store.session import SessionDep
from app.store.types import utc_now
from app.web.categories import category_label, stage_label
from app.web.dashboard import dashboard_view, origin_rows
from app.web.filters import DASHBOARD_WINDOWS, PAGE_SIZE, DashboardWindow, ListFilters, positive_int
from app.web.log_lines import line_window, select_lines
from app.web.templating import STATIC_DIR, build_templates, render_page
from app.web.views import context_ranges, diagnosis_view, grouping_reason

OCCURRENCES_SHOWN = 8
CONTEXT_MAX_LOG_BYTES = 64 * 1024**2  # larger logs show their evidence without context lines
LOG_PAGE_LINES = 1000
TOP_KINDS = 10
TOP_ORIGINS = 12
PREVIEW_LIMIT = 25  # stale diagnoses a signature-change page diagnoses again
PREVIEW_BUDGET_SECONDS = 8.0
TOKEN_COOKIE_MAX_AGE = 30 * 24 * 3600
JOB_PAGE_REFRESH_SECONDS = 3


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: the team they are signed in to (None: every team) and whether signing in matters."""

    team: str | None
    auth_required: bool
    organisation: bool = False  # signed in with an organisation-wide, read-only token

    @property
    def signed_in(self) -> bool:
        """True when a token put the viewer in one team, or in every team (an organisation token)."""
        return self.team is not None or self.organisation


def current_viewer(request: Request, session: SessionDep, settings: SettingsDep, scope: TeamScopeDep) -> Viewer:
    """The viewer of this page (kept on the request, so that its error page knows them too)."""
    viewer = Viewer(team=scope.team, auth_required=auth_required(session, settings), organisation=scope.read_only
                    and scope.team is None)
    request.state.viewer = viewer
    return viewer


ViewerDep = Annotated[Viewer, Depends(current_viewer)]
PageDiagnosisId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # past the store's ids: no such page, not an overflow


class PageRoute(APIRoute):
    """A page's route: its errors are answered with an HTML page of the same status, never JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except AuthenticationError:
                return login_page(request, error=None, status_code=401)
            except TrainwreckError as error:
                return error_page(request, status_code=error.status, message=error.message)
            except RequestValidationError:
                return error_page(request, status_code=404, message="There is no such page.")
            except StarletteHTTPException as error:
                return error_page(request, status_code=error.status_code, message=str(error.detail))
            except SQLAlchemyError as error:
                logger.error("store failure: %s", error)
                return error_page(request, status_code=503, message="The store could not answer; try again shortly.")

        return handle


logger = logging.getLogger(__name__)
router = APIRouter(route_class=PageRoute, include_in_schema=False)
templates = build_templates()


def install_web_pages(app: FastAPI) -> None:
    """Add the pages and their static files (CSS, JS, icons: all served here, nothing from a CDN)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def page(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page template with what every page needs."""
    viewer = getattr(request.state, "viewer", None) or Viewer(team=None, auth_required=status_code == 401)
    return render_page(templates, request, name, {"viewer": viewer, "section": "", **context}, status_code=status_code)


def error_page(request: Request, *, status_code: int, message: str) -> HTMLResponse:
    """A page that says what went wrong, with the error's status."""
    heading = {404: "Not found", 403: "Not allowed"}.get(status_code, "Something went wrong")
    return page(request, "error.html", status_code=status_code, heading=heading, message=message)


def login_page(request: Request, *, error: str | None, status_code: int = 200) -> HTMLResponse:
    """The token sign-in form; after signing in the viewer returns to the page asked for."""
    next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.url.path in ("/login", "/logout"):
        next_url = "/"
    return page(request, "login.html", status_code=status_code, error=error, next_url=next_url)


@router.get("/", response_class=HTMLResponse)
def diagnoses_page(request: Request, session: SessionDep, viewer: ViewerDep) -> HTMLResponse:
    """Past diagnoses, newest first, filtered and paged by the URL, or grouped by failure kind."""
    filters = ListFilters.from_query(request.query_params)
    store_filters = filters.store_filters(visible_team=viewer.team)
    result: Any
    log_matches: dict[int, LineMatch] = {}
    if filters.group:
        result = list_failure_groups(session, store_filters, limit=PAGE_SIZE, offset=filters.offset)
    else:
        result = list_summaries(
            session, store_filters, fingerprint=filters.kind, limit=PAGE_SIZE, offset=filters.offset
        )
        if filters.q:
            log_matches = first_matches(session, filters.q, [row.id for row in result.items])
    return page(
        request,
        "list.html",
        section="diagnoses",
        filters=filters,
        items=result.items,
        log_matches=log_matches,
        total=result.total,
        pages=max(math.ceil(result.total / PAGE_SIZE), 1),
        teams=[viewer.team] if viewer.team else list_team_names(session),
        category_options=[(name, category_label(name)) for name in categories()],
        stage_options=[(name, stage_label(name)) for name in stages()],
    )


@router.get("/diagnoses/{diagnosis_id}", response_class=HTMLResponse)
def diagnosis_page(
    diagnosis_id: PageDiagnosisId, request: Request, session: SessionDep, viewer: ViewerDep
) -> HTMLResponse:
    """One diagnosis explained: verdict, where it died, what to change, evidence, facts, repeats."""
    record = get_diagnosis(session, diagnosis_id, visible_team=viewer.team)
    if record is None:
        raise NotFoundError(f"there is no diagnosis {diagnosis_id}")
    diagnosis = Diagnosis.from_dict(record.result)
    context = {}
    if record.log_bytes <= CONTEXT_MAX_LOG_BYTES:
        lines = select_lines(iter_log(session, record.id), context_ranges(diagnosis))
        context = {line.number: line.text for line in lines}
    same_kind = list_summaries(  # repeats are the team's own; other teams only as a count
        session,
        DiagnosisFilters(visible_team=viewer.team, team=record.team.name),
        fingerprint=record.fingerprint,
        limit=OCCURRENCES_SHOWN + 1,
        offset=0,
    )
    return page(
        request,
        "diagnosis.html",
        section="diagnoses",
        record=record,
        diagnosis=diagnosis,
        view=diagnosis_view(diagnosis, context=context),
        occurrences=[item for item in same_kind.items if item.id != record.id][:OCCURRENCES_SHOWN],
        occurrence_count=same_kind.total - 1,
        feedback=feedback_for(session, record.id),
        other_teams=other_teams_with_kind(session, fingerprint=record.fingerprint, team_id=record.team_id),
        grouped_by=grouping_reason(diagnosis),
        category_options=[(name, category_label(name)) for name in categories()],
    )


@router.post("/diagnoses/{diagnosis_id}/feedback")
def feedback_submitted(
    diagnosis_id: PageDiagnosisId,
    session: SessionDep,
    viewer: ViewerDep,
    verdict: Annotated[str, Form()],
    author: Annotated[str, Form(max_length=200)] = "",
    category: Annotated[str, Form(max_length=64)] = "",
    parameter: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Right, or wrong and what it was: stored, then back to the page, which shows it."""
    record_feedback(session, diagnosis_id=diagnosis_id, visible_team=viewer.team, verdict=verdict, category=category,
                    parameter=parameter, author=author or (f"team {viewer.team}" if viewer.team else "anonymous"),
                    source="web")
    return RedirectResponse(f"/diagnoses/{diagnosis_id}#feedback-heading", status_code=303)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], request: Request, session: SessionDep, viewer: ViewerDep
) -> Response:
    """A big log being diagnosed in the background: refreshes itself until the diagnosis is there, then goes
    to it; says why when it failed."""
    job = job_for_team(session, job_id, visible_team=viewer.team)
    if job is None:
        raise NotFoundError("there is no such background diagnosis")
    if job.status == "done" and job.diagnosis_id is not None:
        return RedirectResponse(f"/diagnoses/{job.diagnosis_id}", status_code=303)
    return page(request, "job.html", section="diagnoses", job=job, refresh_seconds=JOB_PAGE_REFRESH_SECONDS)


@router.get("/diagnoses/{diagnosis_id}/log", response_class=HTMLResponse)
def log_page(
    diagnosis_id: PageDiagnosisId, request: Request, session: SessionDep, viewer: ViewerDep
) -> HTMLResponse:
    """The stored (redacted) log, a page of lines at a time, each line with an #L<number> anchor."""
    record = get_diagnosis(session, diagnosis_id, visible_team=viewer.team)
    if record is None:
        raise NotFoundError(f"there is no diagnosis {diagnosis_id}")
    around = positive_int(request.query_params.get("around"))
    first = positive_int(request.query_params.get("start")) or 1
    if around is not None:
        first = max(around - LOG_PAGE_LINES // 5, 1)
    lines, more = line_window(iter_log(session, record.id), first=first, count=LOG_PAGE_LINES)
    evidence = {item["line"] for item in record.result.get("evidence", [])}
    return page(
        request,
        "log.html",
        section="diagnoses",
        record=record,
        lines=lines,
        more=more,
        first=first,
        page_lines=LOG_PAGE_LINES,
        highlighted=evidence,
    )


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, session: SessionDep, viewer: ViewerDep) -> HTMLResponse:
    """What keeps killing a team's runs in a window of days."""
    window = DashboardWindow.from_query(request.query_params)
    today = utc_now().date()
    store_filters = window.store_filters(today, visible_team=viewer.team)
    view = dashboard_view(window, today=today, tallies=tally_by_day_category_and_stage(session, store_filters))
    return page(
        request,
        "dashboard.html",
        section="dashboard",
        window=window,
        today=today,
        first_day=window.first_day(today),
        window_options=DASHBOARD_WINDOWS,
        teams=[viewer.team] if viewer.team else list_team_names(session),
        view=view,
        top_kinds=top_failure_kinds(session, store_filters, limit=TOP_KINDS),
        precision=precision_by_signature(session, store_filters),
        unknown=unknown_clusters(session, store_filters, limit=TOP_KINDS),
        origins=origin_rows(tally_by_origin(session, store_filters, group_by=window.by), limit=TOP_ORIGINS),
        groupings=ORIGIN_GROUPINGS,
        stale_diagnoses=count_made_with_other_signatures(session, DiagnosisFilters(visible_team=viewer.team),
                                                         version=request.app.state.diagnoser.version),
    )


@router.get("/unknown/{fingerprint}.yaml")
def unknown_signature_skeleton(fingerprint: str, session: SessionDep, viewer: ViewerDep) -> Response:
    """A signature file to start from for one unknown failure kind, its stored root lines as samples."""
    if not re.fullmatch(r"[0-9a-f]{1,64}", fingerprint):
        raise NotFoundError("there is no such failure kind")
    lines = unknown_cluster_lines(session, DiagnosisFilters(visible_team=viewer.team), fingerprint=fingerprint)
    if not lines:
        raise NotFoundError("there is no unknown failure kind with that fingerprint")
    return Response(signature_skeleton(fingerprint, lines), media_type="application/yaml",
                    headers={"Content-Disposition": f'attachment; filename="new-failure-{fingerprint[:8]}.yaml"'})


_CHECK_MACHINE_FIELDS = (("gpu", "GPU", str), ("gpus", "GPUs per node", int),
                         ("gpu_memory_gib", "GPU memory, GiB", float), ("host_memory_gib", "host memory, GiB", float),
                         ("shm_gib", "/dev/shm, GiB", float), ("disk_free_gib", "free disk, GiB", float))


@router.get("/signatures/changes", response_class=HTMLResponse)
async def signature_changes_page(request: Request, viewer: ViewerDep, settings: SettingsDep) -> HTMLResponse:
    """What the signatures loaded now would change in the stored diagnoses made with other ones, before
    `trainwreck rediagnose --all` rewrites anything (the newest, within a few seconds, in the lane for big logs)."""
    state = request.app.state
    preview = await anyio.to_thread.run_sync(
        partial(preview_newest, state.session_factory, visible_team=viewer.team, diagnoser=state.diagnoser,
                settings=settings, limit=PREVIEW_LIMIT, budget_seconds=PREVIEW_BUDGET_SECONDS),
        limiter=state.diagnose_limiter,
    )
    return page(request, "signature_changes.html", section="dashboard", preview=preview)


@router.get("/check", response_class=HTMLResponse)
def check_form(request: Request, viewer: ViewerDep) -> HTMLResponse:
    """A box to paste a launch command into, and the machine it will run on."""
    return page(request, "check.html", section="check", fields=_CHECK_MACHINE_FIELDS, form={}, report=None,
                error=None)


@router.post("/check", response_class=HTMLResponse)
async def check_submitted(request: Request, viewer: ViewerDep) -> HTMLResponse:
    """The findings for the pasted command, on the same page."""
    from app.check.machine import Machine

    submitted = await request.form()
    form = {key: str(value).strip() for key, value in submitted.items() if isinstance(value, str)}
    machine: dict[str, Any] = {}
    error = None
    for name, label, kind in _CHECK_MACHINE_FIELDS:
        if form.get(name):
            try:
                machine[name] = kind(form[name])
            except ValueError:
                error = f"{label}: {form[name]!r} is not a number"
    report = None
    if error is None:
        try:
            report = request.app.state.checker.check(
                form.get("command", ""), machine=Machine(**machine, sources=dict.fromkeys(machine, "given")))
        except TrainwreckError as problem:
            error = problem.message
    return page(request, "check.html", status_code=422 if error else 200, section="check",
                fields=_CHECK_MACHINE_FIELDS, form=form, report=report, error=error)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """The token sign-in form."""
    return login_page(request, error=None)


@router.post("/login", response_class=HTMLResponse)
def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Form()],
    next_url: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    """Check the token and keep it in an HttpOnly, SameSite=Strict cookie; then go where the viewer was going."""
    try:
        resolve_scope(session, token=token.strip(), settings=settings)
    except AuthenticationError as error:
        return login_page(request, error=error.message, status_code=401)
    response = RedirectResponse(local_path(next_url), status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token.strip(),
        max_age=TOKEN_COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def sign_out() -> Response:
    """Forget the token cookie."""
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def local_path(target: str) -> str:
    """`target` when it is a path on this site, else "/" (no open redirects)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
