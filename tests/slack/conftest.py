"""Fixtures for the Slack tests: a fake Slack on loopback, and signed requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_slack import FakeSlack


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API, file host and incoming-webhook receiver on 127.0.0.1."""
    fake = FakeSlack()
    fake.start()
    yield fake
    fake.stop()
