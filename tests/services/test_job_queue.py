"""The job queue starts and stops with the service, on either backend, whenever the stop comes."""

from __future__ import annotations

import asyncio

import anyio

from app.services.job_queue import job_queue

STOP_DEADLINE_SECONDS = 3  # idle, it ends at once; a lost cancellation left it waiting far longer


def test_the_queue_stops_however_soon_after_it_starts(store_url: str) -> None:
    """A stop that lands while the worker is still connecting or registering itself ends it all the same
    (a cancellation lost there once kept the service from shutting down)."""

    async def start_and_stop(delay: float) -> None:
        queue = job_queue(store_url, lambda job_id: None, anyio.CapacityLimiter(1), concurrency=1)
        await queue.start()
        await asyncio.sleep(delay)
        await asyncio.wait_for(queue.stop(), STOP_DEADLINE_SECONDS)

    for delay in (0, 0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.4):
        asyncio.run(start_and_stop(delay))
