"""Helpers for the Slack tests: what Slack sends the app (signed), and the names the tests share."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from server_support import LiveServer
from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "test-signing-secret"
PUBLIC_URL = "https://trainwreck.example"
TEAM_CHANNEL = "C0TRAIN"  # mapped to team "vision"; other channels fall to "default"
APP_ID = "A0TRAINWRECK"
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # for tests the store does not matter to


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
