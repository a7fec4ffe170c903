"""The job queue starts and stops with the service whenever the stop comes; jobs of a dead worker end failed."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import anyio
import pytest
from server_support import oom_log
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.services.ingest import IngestMeta
from app.services.ingest_jobs import fail_abandoned_job, queue_job
from app.services.job_queue import TASK_NAME, ProcrastinateQueue, job_queue
from app.store.models import IngestJob

STOP_DEADLINE_SECONDS = 3  # idle, it ends at once; a lost cancellation left it waiting far longer


def test_the_queue_stops_however_soon_after_it_starts(store_url: str) -> None:
    """A stop that lands while the worker is still connecting or registering itself ends it all the same
    (a cancellation lost there once kept the service from shutting down)."""

    async def start_and_stop(delay: float) -> None:
        queue = job_queue(store_url, lambda job_id: None, anyio.CapacityLimiter(1), concurrency=1,
                          abandon=lambda job_id: False)
        await queue.start()
        await asyncio.sleep(delay)
        await asyncio.wait_for(queue.stop(), STOP_DEADLINE_SECONDS)

    for delay in (0, 0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.4):
        asyncio.run(start_and_stop(delay))


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)  # the embedded store fails them at start
def test_a_job_whose_worker_died_is_failed_and_its_log_deleted(
    store_url: str, store_settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    upload = tmp_path / "big.log"
    upload.write_bytes(oom_log())
    job_id = queue_job(session_factory, upload=upload, meta=IngestMeta(team="vision"), settings=store_settings)
    waiting = store_settings.job_log_dir / f"{job_id}.log"
    assert waiting.exists()

    async def a_worker_dies_then_the_sweep_runs() -> tuple[int, int]:
        queue = ProcrastinateQueue(store_url, lambda job_id: None, anyio.CapacityLimiter(1), concurrency=1,
                                   abandon=partial(fail_abandoned_job, session_factory))
        await queue.app.open_async()
        try:
            await queue.app.configure_task(TASK_NAME).defer_async(job_id=job_id)
            with session_factory.begin() as session:  # taken by a worker whose heartbeat stopped an hour ago
                worker = session.execute(text(
                    "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') "
                    "RETURNING id")).scalar_one()
                session.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :worker"),
                                {"worker": worker})
            return await queue.sweep_stalled(), await queue.sweep_stalled()
        finally:
            await queue.app.close_async()

    assert asyncio.run(a_worker_dies_then_the_sweep_runs()) == (1, 0)  # once, not again
    with session_factory() as session:
        job = session.get(IngestJob, job_id)
        assert job is not None and (job.status, job.error_code) == ("failed", "server_restarted")
        assert session.execute(text("SELECT status FROM procrastinate_jobs")).scalar_one() == "failed"
    assert not waiting.exists()
