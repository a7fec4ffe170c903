"""Fixtures for the Slack tests: a fake Slack on loopback, and the app on loopback wired to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fake_slack import BOT_TOKEN, FakeSlack
from fastapi import FastAPI
from server_support import LiveServer
from slack_support import PUBLIC_URL, SIGNING_SECRET, TEAM_CHANNEL, SlackSender


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API, file host and incoming-webhook receiver on 127.0.0.1."""
    fake = FakeSlack()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def start_slack_app(make_app: Callable[..., FastAPI], fake_slack: FakeSlack) -> Iterator[Callable[..., SlackSender]]:
    """Start the app on loopback, its Slack settings aimed at the fake; keyword arguments override settings."""
    senders: list[SlackSender] = []

    def start(**overrides: object) -> SlackSender:
        settings: dict[str, object] = {
            "slack_signing_secret": SIGNING_SECRET,
            "slack_bot_token": BOT_TOKEN,
            "slack_api_base_url": fake_slack.api_url,
            "slack_channel_teams": {TEAM_CHANNEL: "vision"},
            "public_url": PUBLIC_URL,
            "slack_webhook_url_prefixes": [f"{fake_slack.base_url}/hooks/"],
            "slack_webhook_backoff_seconds": 0.01,
        } | overrides
        server = LiveServer(make_app(**settings))
        server.start()
        senders.append(SlackSender(server))
        return senders[-1]

    yield start
    for sender in senders:
        sender.http.close()
        sender.server.stop()


@pytest.fixture
def slack(start_slack_app: Callable[..., SlackSender]) -> SlackSender:
    """The app on loopback with the default Slack settings."""
    return start_slack_app()
