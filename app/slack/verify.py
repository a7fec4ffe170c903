"""Checking that a request really comes from Slack: its signature over the raw body."""

from __future__ import annotations

import time
from collections.abc import Mapping

from slack_sdk.signature import SignatureVerifier

from app.errors import AuthenticationError, LogTooLargeError, SlackNotConfiguredError

MAX_SLACK_BODY_BYTES = 1 << 20  # Slack's events and commands are a few KB; files come by URL, not in the body
MAX_SIGNATURE_AGE_SECONDS = 5 * 60


def check_slack_headers(headers: Mapping[str, str], *, signing_secret: str | None) -> None:
    """What can be checked before a byte of the body is read: a secret to verify with, the signature headers,
    a fresh timestamp and a declared length Slack would send. An unauthenticated sender never gets its body read."""
    if not signing_secret:
        raise SlackNotConfiguredError("Slack is not configured: set TRAINWRECK_SLACK_SIGNING_SECRET")
    timestamp = headers.get("x-slack-request-timestamp", "")
    if not headers.get("x-slack-signature") or not timestamp.isdigit():
        raise AuthenticationError("missing, invalid or expired Slack signature")
    if abs(time.time() - int(timestamp)) > MAX_SIGNATURE_AGE_SECONDS:
        raise AuthenticationError("missing, invalid or expired Slack signature")
    length = headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_SLACK_BODY_BYTES):
        raise LogTooLargeError(f"a Slack request body is at most {MAX_SLACK_BODY_BYTES} bytes")


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
