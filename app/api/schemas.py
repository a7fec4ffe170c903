"""The API's request and response bodies (their JSON Schema is the OpenAPI at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from app.services.ingest import IngestResult
from app.services.teams import TEAM_NAME_PATTERN
from app.store.models import DiagnosisRecord, FailureKind, IngestJob
from app.store.repositories.log_text import LineMatch
from app.store.repositories.stats import StatsGrouping

NO_CONTROL_CHARACTERS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"  # NUL and friends: no text column stores them
Stage = Literal["load", "early", "mid_run", "checkpoint", "unknown"]


class UploadMetadata(BaseModel):
    """Metadata of an uploaded log, as query parameters or multipart form fields."""

    model_config = ConfigDict(extra="forbid")

    team: str | None = Field(default=None, pattern=TEAM_NAME_PATTERN, description="Defaults to the token's team.")
    job_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    project: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    cluster: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    user: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    exit_code: int | None = Field(default=None, ge=-(2**31), lt=2**31, description="The job's exit status.")


class Evidence(BaseModel):
    line: int = Field(description="1-based line number in the submitted log")
    text: str


class Symptom(BaseModel):
    signature: str
    category: str
    line: int


class Remedy(BaseModel):
    parameter: str
    current: Any = None
    suggested: Any = None
    why: str


class LossPoint(BaseModel):
    step: int
    loss: float | str = Field(description="a number, or 'nan' / 'inf' / '-inf'")


class DiagnosisBody(BaseModel):
    """The contract's diagnosis JSON: the fields of app.diagnosis.model.Diagnosis (a test keeps them equal)."""

    category: str
    stage: Stage
    step: int | None
    total_steps: int | None
    signature: str | None
    title: str
    summary: str
    confidence: float
    evidence: list[Evidence]
    symptoms: list[Symptom]
    remedies: list[Remedy]
    run: dict[str, Any]
    fingerprint: str
    corrected_command: str | None = None
    verification_command: str | None = None
    loss_curve: list[LossPoint] = []
    signature_set_version: str = ""
    stage_reason: str | None = None
    warnings: list[str] = []
    lines_read: int = 0
    bytes_read: int = 0


class JobMetadata(BaseModel):
    """Who sent the log, about which job, and when."""

    id: int
    url: str = Field(description="The diagnosis page for people")
    team: str
    job_id: str | None
    project: str | None
    cluster: str | None
    user: str | None
    exit_code: int | None
    filename: str | None
    source: str
    received_at: datetime
    diagnosed_at: datetime
    log_bytes: int = Field(description="Size of the submitted log, decompressed")


class DiagnosisOut(DiagnosisBody, JobMetadata):
    """One stored diagnosis: the diagnosis JSON and the job's metadata side by side."""

    @classmethod
    def from_record(cls, record: DiagnosisRecord, *, public_url: str, **extra: Any) -> Self:
        """The answer for a stored diagnosis."""
        return cls(**record.result, **_record_columns(JobMetadata, record, public_url=public_url), **extra)


class CreatedDiagnosisOut(DiagnosisOut):
    created: bool = Field(description="False when this team had already sent the same log (answered 200)")

    @classmethod
    def from_result(cls, result: IngestResult, *, public_url: str) -> Self:
        """The answer to an upload, from what the ingest stored (the row just committed is not read again)."""
        meta = result.meta
        return cls(
            **result.diagnosis.to_dict(),
            id=result.diagnosis_id,
            url=diagnosis_url(public_url, result.diagnosis_id),
            team=meta.team,
            job_id=meta.job_id,
            project=meta.project,
            cluster=meta.cluster,
            user=meta.user,
            exit_code=meta.exit_code,
            filename=meta.filename,
            source=meta.source,
            received_at=result.received_at,
            diagnosed_at=result.diagnosed_at,
            log_bytes=result.log_bytes,
            created=result.created,
        )


class LogMatchOut(BaseModel):
    """The first stored line of the log holding every word searched for (`q`), and where to read it."""

    line: int
    text: str
    url: str


class DiagnosisSummary(BaseModel):
    """One line of the diagnosis list."""

    id: int
    url: str
    team: str
    job_id: str | None
    project: str | None
    cluster: str | None
    user: str | None
    exit_code: int | None
    received_at: datetime
    category: str
    stage: str
    step: int | None
    total_steps: int | None
    signature: str | None
    title: str
    confidence: float
    fingerprint: str
    log_match: LogMatchOut | None = None

    @classmethod
    def from_record(
        cls, record: DiagnosisRecord, *, public_url: str, log_match: LineMatch | None = None
    ) -> DiagnosisSummary:
        """The list line of a stored diagnosis (with the log line a search matched)."""
        summary = cls(**_record_columns(cls, record, public_url=public_url))
        if log_match is not None:
            summary.log_match = LogMatchOut(line=log_match.line, text=log_match.text,
                                            url=f"{summary.url}/log?around={log_match.line}#L{log_match.line}")
        return summary


class DiagnosisPage(BaseModel):
    items: list[DiagnosisSummary]
    total: int = Field(description="Diagnoses matching the filters, on every page")
    limit: int
    offset: int


class FailureGroupOut(BaseModel):
    """Diagnoses of one team with the same fingerprint: one failure kind."""

    team: str
    fingerprint: str
    category: str
    title: str
    matching: int = Field(description="Diagnoses of this kind that match the filters")
    count: int = Field(description="Diagnoses of this kind, ever")
    first_seen: datetime
    last_seen: datetime
    latest: DiagnosisSummary

    @classmethod
    def from_group(
        cls, *, matching: int, latest: DiagnosisRecord, kind: FailureKind | None, public_url: str
    ) -> FailureGroupOut:
        """One failure kind; all-time figures from `kind` (falling back to the newest diagnosis)."""
        return cls(
            team=latest.team.name,
            fingerprint=latest.fingerprint,
            category=latest.category,
            title=latest.title,
            matching=matching,
            count=kind.count if kind else matching,
            first_seen=kind.first_seen if kind else latest.received_at,
            last_seen=kind.last_seen if kind else latest.received_at,
            latest=DiagnosisSummary.from_record(latest, public_url=public_url),
        )


class FailureGroupPage(BaseModel):
    groups: list[FailureGroupOut]
    total: int = Field(description="Failure kinds matching the filters, on every page")
    limit: int
    offset: int


class StatsGroup(BaseModel):
    key: str
    count: int


class StatsOut(BaseModel):
    group_by: StatsGrouping
    total: int
    groups: list[StatsGroup]


class ErrorDetail(BaseModel):
    code: str
    message: str


class JobOut(BaseModel):
    """A big upload being diagnosed in the background: follow `status_url` until `status` is done or failed."""

    id: str
    status: Literal["queued", "running", "done", "failed"]
    team: str
    log_bytes: int
    status_url: str = Field(description="This job, for programs (what the 202's Location header names)")
    page_url: str = Field(description="This job's page for people: it shows the diagnosis once there is one")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    diagnosis_id: int | None = Field(description="Set once done")
    diagnosis_url: str | None = Field(description="The diagnosis page, once done")
    created: bool | None = Field(description="Once done: False when the team had already sent the same log")
    error: ErrorDetail | None = Field(description="Why it failed, once failed")

    @classmethod
    def from_job(cls, job: IngestJob, *, public_url: str) -> Self:
        base = public_url.rstrip("/")
        return cls(
            id=job.id, status=job.status, team=job.team.name, log_bytes=job.log_bytes,  # type: ignore[arg-type]
            status_url=f"{base}/api/v1/jobs/{job.id}", page_url=f"{base}/jobs/{job.id}",
            created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
            diagnosis_id=job.diagnosis_id, created=job.created,
            diagnosis_url=diagnosis_url(public_url, job.diagnosis_id) if job.diagnosis_id is not None else None,
            error=ErrorDetail(code=job.error_code, message=job.error_message or "") if job.error_code else None,
        )


class ErrorOut(BaseModel):
    """The one shape of every error answer."""

    error: ErrorDetail


def _record_columns(model: type[BaseModel], record: DiagnosisRecord, *, public_url: str) -> dict[str, Any]:
    """The model's fields read from a stored diagnosis's columns; `url` and `team` are derived."""
    columns = {name: getattr(record, name) for name in model.model_fields if name not in ("url", "team", "log_match")}
    return {**columns, "url": diagnosis_url(public_url, record.id), "team": record.team.name}


def diagnosis_url(public_url: str, diagnosis_id: int) -> str:
    """The page of a diagnosis, for people."""
    return f"{public_url.rstrip('/')}/diagnoses/{diagnosis_id}"
