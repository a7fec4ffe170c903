"""Telling a team's Slack channel about each of its new diagnoses, through its incoming webhook."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait

from sqlalchemy.orm import Session, sessionmaker

from app.api.schemas import diagnosis_url
from app.config import Settings
from app.services.ingest import IngestResult
from app.slack.blocks import diagnosis_message, escape
from app.slack.webhooks import post_to_webhook, webhook_url_allowed
from app.store.repositories.webhooks import get_slack_webhook_url

log = logging.getLogger(__name__)

WORKERS = 2
CLOSE_GRACE_SECONDS = 5.0  # how long a shutdown waits for queued posts (an unreachable Slack retries for long)


class TeamWebhookNotifier:
    """A new-diagnosis listener: posts to the team's webhook in its own threads, after the commit."""

    def __init__(self, settings: Settings, *, session_factory: sessionmaker[Session]) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="trainwreck-webhook")
        self._queued: set[Future[None]] = set()
        self._closed = False

    def __call__(self, result: IngestResult) -> None:
        """Queue the post and return at once; a slow or failing webhook never holds up the ingest."""
        if not self._closed:
            future = self._executor.submit(self._post, result)
            self._queued.add(future)
            future.add_done_callback(self._queued.discard)

    def close(self, grace_seconds: float = CLOSE_GRACE_SECONDS) -> None:
        """Take no more posts; give the queued ones `grace_seconds` to go out, then drop those not yet
        started (logged), so that a shutdown never waits on an unreachable Slack. Posts under way finish
        their retries in their threads."""
        self._closed = True
        _, unfinished = wait(set(self._queued), timeout=grace_seconds)
        if dropped := sum(future.cancel() for future in unfinished):
            log.warning("shutting down: %d queued webhook posts dropped", dropped)
        self._executor.shutdown(wait=False)

    def _post(self, result: IngestResult) -> None:
        try:
            with self._sessions() as session:
                url = get_slack_webhook_url(session, result.meta.team)
            if url is None:
                return
            if not webhook_url_allowed(url, self._settings.slack_webhook_url_prefixes):
                log.warning(
                    "team %s: webhook URL not allowed by slack_webhook_url_prefixes; not posting", result.meta.team
                )
                return
            message = diagnosis_message(
                result.diagnosis,
                url=diagnosis_url(self._settings.base_url, result.diagnosis_id),
                about=_about(result),
            )
            post_to_webhook(
                url,
                message,
                attempts=self._settings.slack_webhook_attempts,
                backoff_seconds=self._settings.slack_webhook_backoff_seconds,
            )
        except Exception:
            log.exception("posting diagnosis %s to team %s's webhook failed", result.diagnosis_id, result.meta.team)


def _about(result: IngestResult) -> list[str]:
    meta = result.meta
    facts = [f"team *{escape(meta.team)}*"]
    for label, value in (("job", meta.job_id), ("project", meta.project), ("cluster", meta.cluster)):
        if value:
            facts.append(f"{label} `{escape(value)}`")
    facts.append(f"via {escape(meta.source)}")
    return facts
