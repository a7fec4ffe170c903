"""Checking that a request really comes from Slack: its signature over the raw body."""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import SignatureVerifier

from app.errors import AuthenticationError, SlackNotConfiguredError


def verify_slack_request(body: bytes, headers: Mapping[str, str], *, signing_secret: str | None) -> None:
    """Raise unless the body carries a valid Slack signature no older than five minutes."""
    if not signing_secret:
        raise SlackNotConfiguredError("Slack is not configured: set TRAINWRECK_SLACK_SIGNING_SECRET")
    verifier = SignatureVerifier(signing_secret)
    try:
        valid = verifier.is_valid_request(body, dict(headers))
    except (ValueError, UnicodeDecodeError):  # a timestamp that is not a number, a body that is not UTF-8
        valid = False
    if not valid:
        raise AuthenticationError("missing, invalid or expired Slack signature")
