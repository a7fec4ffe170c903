from __future__ import annotations

import time

import pytest
from slack_sdk.signature import SignatureVerifier

from app.errors import AuthenticationError, SlackNotConfiguredError
from app.slack.verify import verify_slack_request

SECRET = "signing-secret"
BODY = b'{"type":"url_verification","challenge":"abc"}'


def signed_headers(body: bytes, *, secret: str = SECRET, age_seconds: int = 0) -> dict[str, str]:
    timestamp = str(int(time.time()) - age_seconds)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": str(signature)}


def test_a_fresh_correct_signature_passes() -> None:
    verify_slack_request(BODY, signed_headers(BODY), signing_secret=SECRET)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(signed_headers(BODY, secret="another-secret"), id="wrong secret"),
        pytest.param(signed_headers(b"{}"), id="other body"),
        pytest.param(signed_headers(BODY, age_seconds=6 * 60), id="older than five minutes"),
        pytest.param({}, id="missing"),
        pytest.param({"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}, id="garbage"),
    ],
)
def test_bad_signatures_are_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(AuthenticationError):
        verify_slack_request(BODY, headers, signing_secret=SECRET)


def test_a_body_that_is_not_utf8_is_rejected() -> None:
    body = b"\xff\xfe"
    with pytest.raises(AuthenticationError):
        verify_slack_request(
            body,
            {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=0"},
            signing_secret=SECRET,
        )


def test_without_a_signing_secret_slack_is_not_configured() -> None:
    with pytest.raises(SlackNotConfiguredError):
        verify_slack_request(BODY, signed_headers(BODY), signing_secret=None)
