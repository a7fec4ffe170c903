"""Where the service hands background jobs (ingest_jobs): its own process on SQLite, procrastinate on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

import anyio
from sqlalchemy.engine import make_url

from app.errors import StoreUnavailableError
from app.services.ingest_jobs import QUEUE

logger = logging.getLogger(__name__)
RunJob = Callable[[str], None]
AbandonJob = Callable[[str], bool]
REOPEN_SECONDS = 5.0
RECANCEL_SECONDS = 0.5
STALLED_SWEEP_SECONDS = 60.0
TASK_NAME = "trainwreck.diagnose_upload"


class JobQueue(Protocol):
    async def start(self) -> None:
        """Begin taking jobs (the service's lifespan calls it)."""

    async def submit(self, job_id: str) -> None:
        """Hand over a job whose row is queued."""

    async def stop(self) -> None:
        """Stop taking jobs; one in flight on the embedded store is failed by the next start."""


class InProcessQueue:
    """Jobs run in this process's worker threads, in the lane for big logs."""

    def __init__(self, run: RunJob, limiter: anyio.CapacityLimiter) -> None:
        self._run = run
        self._limiter = limiter
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def submit(self, job_id: str) -> None:
        task = asyncio.create_task(self._work(job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self, job_id: str) -> None:
        await anyio.to_thread.run_sync(self._run, job_id, limiter=self._limiter, abandon_on_cancel=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()


class ProcrastinateQueue:
    """Jobs deferred to procrastinate's queue in the store's PostgreSQL; this process's worker takes its share."""

    def __init__(self, database_url: str, run: RunJob, limiter: anyio.CapacityLimiter, *, concurrency: int,
                 abandon: AbandonJob) -> None:
        import procrastinate

        conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
        self._concurrency = concurrency
        self._worker: asyncio.Task[None] | None = None
        self._open = asyncio.Event()
        self._running = 0
        self._abandon = abandon

        @self.app.task(name=TASK_NAME, queue=QUEUE)
        async def diagnose_upload(job_id: str) -> None:
            self._running += 1
            try:
                await anyio.to_thread.run_sync(run, job_id, limiter=limiter)
            finally:
                self._running -= 1

        self._task = diagnose_upload

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._keep_working())

    async def _keep_working(self) -> None:
        """Open the queue and work on it; while the store is unreachable, try again every few seconds (the
        service still starts, and answers 503 meanwhile)."""
        while True:
            sweeper: asyncio.Task[None] | None = None
            try:
                await self.app.open_async()
                self._open.set()
                sweeper = asyncio.create_task(self._keep_sweeping())
                await self.app.run_worker_async(queues=[QUEUE], concurrency=self._concurrency,
                                                install_signal_handlers=False, wait=True, delete_jobs="successful")
            except Exception as error:  # the store went away: the queue comes back with it
                logger.warning("the task queue is unavailable (%s); trying again in %g s", error, REOPEN_SECONDS)
            finally:
                if sweeper is not None:
                    sweeper.cancel()
                self._open.clear()
                with contextlib.suppress(Exception):
                    await self.app.close_async()
            await asyncio.sleep(REOPEN_SECONDS)

    async def _keep_sweeping(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a store that went away ends the worker too, which restarts this
                await self.sweep_stalled()
            await asyncio.sleep(STALLED_SWEEP_SECONDS)

    async def sweep_stalled(self) -> int:
        """Fail the jobs whose worker stopped beating (its process died mid-diagnosis: a log that killed one
        worker is not handed to the next), as a restart fails them on the embedded store; how many."""
        from procrastinate.jobs import Status

        failed = 0
        for job in await self.app.job_manager.get_stalled_jobs(queue=QUEUE, task_name=TASK_NAME):
            job_id = str(job.task_kwargs.get("job_id", ""))
            if await anyio.to_thread.run_sync(self._abandon, job_id):
                logger.warning("background diagnosis %s died with its worker; marked failed", job_id)
                failed += 1
            assert job.id is not None
            await self.app.job_manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
        return failed

    async def submit(self, job_id: str) -> None:
        if not self._open.is_set():
            raise StoreUnavailableError("the task queue is not reachable now; try again shortly")
        from procrastinate.exceptions import ConnectorException

        try:
            await self._task.defer_async(job_id=job_id)
        except ConnectorException as error:
            raise StoreUnavailableError(f"the task queue refused the job: {error}") from None

    async def stop(self) -> None:
        """Cancel the worker; procrastinate then lets the jobs in flight finish. While none is, cancel it
        again until it ends: a cancellation that lands while procrastinate registers its worker in the
        database can be lost there, and the worker would wait for jobs forever."""
        if self._worker is None:
            return
        self._worker.cancel()
        while not (await asyncio.wait({self._worker}, timeout=RECANCEL_SECONDS))[0]:
            if not self._running:
                self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._worker


def job_queue(
    database_url: str, run: RunJob, limiter: anyio.CapacityLimiter, *, concurrency: int, abandon: AbandonJob
) -> JobQueue:
    """The queue the store's backend calls for (`abandon` fails a job whose worker died; on the embedded
    store the next start does that instead)."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return ProcrastinateQueue(database_url, run, limiter, concurrency=concurrency, abandon=abandon)
    return InProcessQueue(run, limiter)
