"""Mounting the Slack app on the service and running its background parts for the app's lifetime."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from app.slack.client import SlackClient
from app.slack.notify import TeamWebhookNotifier
from app.slack.routes import router
from app.slack.service import SlackService


def install_slack(app: FastAPI) -> None:
    """Mount POST /slack/events and /slack/commands."""
    app.include_router(router)


@contextmanager
def running_slack(app: FastAPI) -> Iterator[None]:
    """Build the Slack client, the event service and the team-webhook notifier; finish their work at exit."""
    settings = app.state.settings
    client = SlackClient(base_url=settings.slack_api_base_url, token=settings.slack_bot_token)
    webhooks = TeamWebhookNotifier(settings, session_factory=app.state.session_factory)
    app.state.ingest_listeners.add(webhooks)
    app.state.slack = SlackService(
        settings,
        client=client,
        session_factory=app.state.session_factory,
        diagnoser=app.state.diagnoser,
        listeners=app.state.ingest_listeners,
    )
    try:
        yield
    finally:
        app.state.slack.close()
        webhooks.close()
        client.close()
