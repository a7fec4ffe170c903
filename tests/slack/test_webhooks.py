from __future__ import annotations

import socket

from fake_slack import FakeSlack

from app.slack.blocks import notice_message
from app.slack.webhooks import post_to_webhook

MESSAGE = notice_message("*vision*: CUDA ran out of GPU memory")


def test_a_webhook_failing_twice_is_retried_until_it_takes_the_post(fake_slack: FakeSlack) -> None:
    fake_slack.webhook_statuses["team"] = [500, 500, 200]

    posted = post_to_webhook(fake_slack.webhook_url("team"), MESSAGE, attempts=4, backoff_seconds=0.01)

    calls = fake_slack.calls_to("hooks/team")
    assert posted
    assert len(calls) == 3
    assert calls[-1].body["blocks"] == MESSAGE.blocks


def test_retries_are_bounded(fake_slack: FakeSlack) -> None:
    fake_slack.webhook_statuses["team"] = [502] * 10

    posted = post_to_webhook(fake_slack.webhook_url("team"), MESSAGE, attempts=3, backoff_seconds=0.01)

    assert not posted
    assert len(fake_slack.calls_to("hooks/team")) == 3


def test_a_client_error_is_not_retried(fake_slack: FakeSlack) -> None:
    fake_slack.webhook_statuses["team"] = [404, 200]

    assert not post_to_webhook(fake_slack.webhook_url("team"), MESSAGE, attempts=3, backoff_seconds=0.01)
    assert len(fake_slack.calls_to("hooks/team")) == 1


def test_an_unreachable_webhook_is_reported_not_raised() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    assert not post_to_webhook(f"http://127.0.0.1:{port}/hooks/gone", MESSAGE, attempts=2, backoff_seconds=0.01)
