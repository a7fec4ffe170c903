"""Fixtures for the Slack tests: a fake Slack on loopback, and the app on loopback wired to it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fake_slack import BOT_TOKEN, FakeSlack
from fastapi import FastAPI
from server_support import LiveServer
from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "test-signing-secret"
PUBLIC_URL = "https://trainwreck.example"
TEAM_CHANNEL = "C0TRAIN"  # mapped to team "vision"; other channels fall to "default"
APP_ID = "A0TRAINWRECK"
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # for tests the store does not matter to


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API, file host and incoming-webhook receiver on 127.0.0.1."""
    fake = FakeSlack()
    fake.start()
    yield fake
    fake.stop()


class SlackSender:
    """Sends what Slack would send to the app on loopback: signed event deliveries and slash commands."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=10)

    def post(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str,
        secret: str = SIGNING_SECRET,
        age_seconds: int = 0,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        timestamp = str(int(time.time()) - age_seconds)
        signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
        signed = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": str(signature)}
        return self.http.post(path, content=body, headers={"Content-Type": content_type, **signed, **(headers or {})})

    def event(self, event: dict[str, Any], *, event_id: str = "Ev0001", retry: int | None = None) -> httpx.Response:
        envelope = {
            "token": "unused",
            "team_id": "T0FAKE",
            "api_app_id": APP_ID,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
        }
        headers = {} if retry is None else {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        response = self.post(
            "/slack/events", json.dumps(envelope).encode(), content_type="application/json", headers=headers
        )
        assert response.status_code == 200, response.text
        return response

    def command(self, text: str, *, channel: str = TEAM_CHANNEL) -> dict[str, Any]:
        form = {
            "command": "/trainwreck",
            "text": text,
            "channel_id": channel,
            "team_id": "T0FAKE",
            "user_id": "U1",
            "response_url": "https://hooks.slack.com/commands/x",
        }
        response = self.post(
            "/slack/commands", urlencode(form).encode(), content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 200, response.text
        return response.json()

    def finish(self) -> None:
        """Stop the app: its lifespan waits for the background work, so every reply has been sent."""
        self.server.stop()


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
