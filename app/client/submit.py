"""Sending one log to the trainwreck server: streamed, gzip-compressed on the fly, retried with backoff."""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from app import __version__
from app.config import Settings
from app.diagnosis.model import Diagnosis
from app.diagnosis.reader import GZIP_MAGIC, ZSTD_MAGIC
from app.errors import ServerUnreachableError, SubmissionPendingError, SubmissionRejectedError, UnreadableLogError

DIAGNOSES_ROUTE = "/api/v1/diagnoses"
READ_SIZE = 1 << 20
GZIP_LEVEL = 1  # logs still shrink several-fold; more effort costs the training node CPU for little gain
CONNECT_TIMEOUT_SECONDS = 10.0
ACCEPTED_STATUSES = frozenset({200, 201})
QUEUED_STATUS = 202  # a big log: diagnosed in a background job, followed at its status URL
JOBS_ROUTE = "/api/v1/jobs"
JOB_WAIT_SECONDS = 900.0  # beyond the server's own cap on one diagnosis (600 s), with time to wait in its queue
JOB_POLL_SECONDS = (0.5, 5.0)  # first and longest wait between two looks at a job
TRANSIENT_STATUSES = frozenset({408, 429})  # besides every 5xx


@dataclass(frozen=True, slots=True)
class SubmissionMetadata:
    """What the server records about the job beside its log; every field is optional."""

    team: str | None = None
    job_id: str | None = None
    project: str | None = None
    cluster: str | None = None
    user: str | None = None
    exit_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """All fields, for the spool's JSON sidecar."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionMetadata:
        """Inverse of to_dict; unknown keys are ignored."""
        return cls(**{name: value for name, value in data.items() if name in cls.__dataclass_fields__})

    def query_params(self) -> dict[str, str]:
        """The fields that are set, as the route's query parameters."""
        return {name: str(value) for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True, slots=True)
class Submission:
    """The server's answer: where the diagnosis lives and what it says."""

    id: str
    url: str
    diagnosis: Diagnosis


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many tries one log gets, and the wait after the first failure (doubling, with jitter)."""

    attempts: int
    first_delay_seconds: float

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after that many failed tries: first × 2^(failures-1), jittered down by up to half."""
        delay: float = self.first_delay_seconds * 2 ** (failures - 1) * random.uniform(0.5, 1.0)
        return delay


class LogSubmitter:
    """Posts logs to one trainwreck server over one connection pool; close it when done."""

    def __init__(self, server_url: str, token: str | None, *, timeout_seconds: float, retry: RetryPolicy) -> None:
        headers = {"User-Agent": f"trainwreck/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.server_url = server_url
        self._retry = retry
        self._client = httpx.Client(
            base_url=server_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, CONNECT_TIMEOUT_SECONDS)),
        )

    @classmethod
    def from_settings(cls, settings: Settings, server_url: str) -> LogSubmitter:
        """A submitter with the token, timeout and retry policy from the settings."""
        return cls(
            server_url,
            settings.token,
            timeout_seconds=settings.submit_timeout_seconds,
            retry=RetryPolicy(settings.submit_attempts, settings.submit_backoff_seconds),
        )

    def __enter__(self) -> LogSubmitter:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def submit(self, log_path: Path, metadata: SubmissionMetadata) -> Submission:
        """Send the log; transient failures are retried, and raise ServerUnreachableError once tries run out."""
        failures = 0
        while True:
            try:
                return self._post(log_path, metadata)
            except ServerUnreachableError:
                failures += 1
                if failures >= self._retry.attempts:
                    raise
                time.sleep(self._retry.delay_after(failures))

    def _post(self, log_path: Path, metadata: SubmissionMetadata) -> Submission:
        compressed = _starts_compressed(log_path)
        headers = {"Content-Type": "application/octet-stream"}
        if not compressed:
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._client.post(
                DIAGNOSES_ROUTE,
                params=metadata.query_params(),
                content=_read_blocks(log_path) if compressed else _gzip_blocks(log_path),
                headers=headers,
            )
        except httpx.TransportError as error:
            raise ServerUnreachableError(f"cannot reach {self.server_url}: {error or type(error).__name__}") from None
        status = response.status_code
        if status >= 500 or status in TRANSIENT_STATUSES:
            raise ServerUnreachableError(f"{self.server_url} answered {status}: {_error_message(response)}")
        if status == QUEUED_STATUS:
            return self._follow_job(response)
        if status not in ACCEPTED_STATUSES:
            raise SubmissionRejectedError(f"{self.server_url} refused the log ({status}): {_error_message(response)}")
        return _parse_submission(response)

    def _follow_job(self, accepted: httpx.Response) -> Submission:
        """Wait for a background job to end; its diagnosis, or SubmissionPendingError past JOB_WAIT_SECONDS."""
        try:
            job_id, page_url = str(accepted.json()["id"]), str(accepted.json()["page_url"])
        except (ValueError, KeyError, TypeError) as error:
            raise SubmissionRejectedError(f"unexpected answer, is this a trainwreck server? ({error})") from None
        give_up = time.monotonic() + JOB_WAIT_SECONDS
        pause = JOB_POLL_SECONDS[0]
        while True:
            job = self._get_json(f"{JOBS_ROUTE}/{job_id}")
            if job.get("status") == "done":
                return _parse_submission(self._get(f"{DIAGNOSES_ROUTE}/{job['diagnosis_id']}"))
            if job.get("status") == "failed":
                why = (job.get("error") or {}).get("message")
                raise SubmissionRejectedError(f"{self.server_url} could not diagnose the log: {why}")
            if time.monotonic() + pause > give_up:
                raise SubmissionPendingError(f"the server is still diagnosing the log: {page_url}")
            time.sleep(pause)
            pause = min(pause * 2, JOB_POLL_SECONDS[1])

    def _get(self, route: str) -> httpx.Response:
        try:
            response = self._client.get(route)
        except httpx.TransportError as error:
            raise ServerUnreachableError(f"cannot reach {self.server_url}: {error or type(error).__name__}") from None
        status = response.status_code
        if status >= 500 or status in TRANSIENT_STATUSES:
            raise ServerUnreachableError(f"{self.server_url} answered {status}: {_error_message(response)}")
        if status != 200:
            raise SubmissionRejectedError(f"{self.server_url} answered {status}: {_error_message(response)}")
        return response

    def _get_json(self, route: str) -> dict[str, Any]:
        try:
            body = self._get(route).json()
        except ValueError as error:
            raise SubmissionRejectedError(f"unexpected answer, is this a trainwreck server? ({error})") from None
        return body if isinstance(body, dict) else {}


def _starts_compressed(log_path: Path) -> bool:
    try:
        with log_path.open("rb") as log:
            head = log.read(len(ZSTD_MAGIC))
    except OSError as error:
        raise UnreadableLogError(f"cannot open {log_path}: {error.strerror or error}") from None
    return head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC)


def _read_blocks(log_path: Path) -> Iterator[bytes]:
    with log_path.open("rb") as log:
        while block := log.read(READ_SIZE):
            yield block


def _gzip_blocks(log_path: Path) -> Iterator[bytes]:
    compressor = zlib.compressobj(GZIP_LEVEL, wbits=16 + zlib.MAX_WBITS)
    for block in _read_blocks(log_path):
        if compressed := compressor.compress(block):
            yield compressed
    yield compressor.flush()


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200].strip() or response.reason_phrase


def _parse_submission(response: httpx.Response) -> Submission:
    try:
        body = response.json()
        return Submission(id=str(body["id"]), url=body["url"], diagnosis=Diagnosis.from_dict(body))
    except (ValueError, KeyError, TypeError) as error:
        raise SubmissionRejectedError(f"unexpected answer, is this a trainwreck server? ({error})") from None
