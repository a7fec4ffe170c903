"""Who hears about new diagnoses (metrics, a team's Slack webhook, ...), called after the commit."""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.services.ingest import IngestResult

logger = logging.getLogger(__name__)

IngestListener = Callable[[IngestResult], None]


class IngestListeners:
    """Callbacks run once per new diagnosis, after it is committed, in the thread that ingested it.

    A callback that raises is logged and skipped: the diagnosis is stored either way. Callbacks that
    do slow work (HTTP calls) should hand it to their own thread or queue.
    """

    def __init__(self) -> None:
        self._listeners: list[IngestListener] = []

    def add(self, listener: IngestListener) -> None:
        """Call `listener` for every new diagnosis from now on."""
        self._listeners.append(listener)

    def notify(self, result: IngestResult) -> None:
        """Tell every listener about a new, committed diagnosis."""
        for listener in self._listeners:
            try:
                listener(result)
            except Exception:
                logger.exception("a new-diagnosis listener failed (diagnosis %s)", result.diagnosis_id)
