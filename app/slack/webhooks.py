"""Posting to a team's Slack incoming webhook, retried with bounded exponential backoff."""

from __future__ import annotations

import logging
import random

from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from app.slack.blocks import SlackMessage

log = logging.getLogger(__name__)


class ServerErrorsRetryHandler(RetryHandler):
    """Retries every 5xx answer (the SDK's own handler retries only 500 and 503)."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code >= 500


class ProportionalJitter(Jitter):
    """Spreads each wait over 50-150% of itself (the SDK's jitter adds up to a whole second)."""

    def recalculate(self, duration: float) -> float:
        return duration * (0.5 + random.random())


def post_to_webhook(
    url: str, message: SlackMessage, *, attempts: int, backoff_seconds: float, timeout_seconds: int = 10
) -> bool:
    """Post one message; True once Slack accepted it, False after the last attempt failed (logged)."""
    backoff = BackoffRetryIntervalCalculator(backoff_factor=backoff_seconds, jitter=ProportionalJitter())
    retries = max(attempts - 1, 0)
    client = WebhookClient(
        url,
        timeout=timeout_seconds,
        retry_handlers=[
            ServerErrorsRetryHandler(max_retry_count=retries, interval_calculator=backoff),
            ConnectionErrorRetryHandler(max_retry_count=retries, interval_calculator=backoff),
            RateLimitErrorRetryHandler(max_retry_count=retries),
        ],
    )
    try:
        response = client.send(text=message.text, blocks=message.blocks, unfurl_links=False)
    except Exception as error:  # an unreachable webhook must never break the caller
        log.warning("Slack webhook post failed after %d attempts: %s", attempts, error)
        return False
    if response.status_code != 200:
        log.warning("Slack webhook answered %s after %d attempts: %s", response.status_code, attempts, response.body)
        return False
    return True


def webhook_url_allowed(url: str, prefixes: list[str]) -> bool:
    """Whether a team may have trainwreck post to this URL (it must start with an allowed prefix)."""
    return any(url.startswith(prefix) for prefix in prefixes)
