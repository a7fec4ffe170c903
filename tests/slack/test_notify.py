"""New diagnoses posted to the team's Slack webhook: from the API and from Slack, retried, never in the way."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from fake_slack import FakeSlack
from server_support import oom_log
from slack_support import PUBLIC_URL, SQLITE_ONLY, TEAM_CHANNEL, SlackSender
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.slack.notify import CLOSE_GRACE_SECONDS
from app.store.models import DiagnosisRecord


def set_webhook(slack: SlackSender, team: str, url: str) -> None:
    response = slack.http.put(f"/api/v1/teams/{team}/webhook", json={"url": url})
    assert response.status_code == 200, response.text


def upload(slack: SlackSender, log: bytes, *, team: str, job_id: str = "j-1") -> int:
    response = slack.http.post("/api/v1/diagnoses", params={"team": team, "job_id": job_id}, content=log)
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


def test_a_new_diagnosis_from_the_api_is_posted_to_its_teams_webhook_once(
    slack: SlackSender, fake_slack: FakeSlack
) -> None:
    set_webhook(slack, "vision", fake_slack.webhook_url("vision"))

    diagnosis_id = upload(slack, oom_log(), team="vision", job_id="slurm-77")
    upload(slack, oom_log(), team="vision", job_id="slurm-77")  # the same log again: not new
    upload(slack, oom_log(job="other"), team="nlp")  # a team without a webhook
    slack.finish()

    [post] = fake_slack.calls_to("hooks/vision")
    text = json.dumps(post.body["blocks"], ensure_ascii=False)
    assert "`gpu_oom`" in text
    assert f"{PUBLIC_URL}/diagnoses/{diagnosis_id}" in text
    assert "team *vision*" in text
    assert "job `slurm-77`" in text
    assert [call.path for call in fake_slack.calls if call.path.startswith("hooks/")] == ["hooks/vision"]


@SQLITE_ONLY
def test_a_failing_webhook_is_retried_until_it_takes_the_post(slack: SlackSender, fake_slack: FakeSlack) -> None:
    fake_slack.webhook_statuses["vision"] = [500, 500, 200]
    set_webhook(slack, "vision", fake_slack.webhook_url("vision"))

    upload(slack, oom_log(), team="vision")

    assert len(fake_slack.wait_for("hooks/vision", count=3)) == 3
    slack.finish()
    assert len(fake_slack.calls_to("hooks/vision")) == 3


def test_a_webhook_that_keeps_failing_never_fails_the_ingest(
    start_slack_app: Callable[..., SlackSender], fake_slack: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    slack = start_slack_app(slack_webhook_attempts=3)
    fake_slack.webhook_statuses["vision"] = [503] * 10
    set_webhook(slack, "vision", fake_slack.webhook_url("vision"))

    response = slack.http.post("/api/v1/diagnoses", params={"team": "vision"}, content=oom_log())
    slack.finish()

    assert response.status_code == 201
    assert len(fake_slack.calls_to("hooks/vision")) == 3
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(DiagnosisRecord)) == 1


@SQLITE_ONLY
def test_a_diagnosis_made_in_slack_is_posted_to_the_webhook_too(slack: SlackSender, fake_slack: FakeSlack) -> None:
    set_webhook(slack, "vision", fake_slack.webhook_url("vision"))
    fake_slack.add_file("F0LOG", oom_log(), channel=TEAM_CHANNEL)

    slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": TEAM_CHANNEL,
            "channel_type": "channel",
            "user": "U0ALICE",
            "ts": "1700000000.000100",
            "files": [{"id": "F0LOG"}],
        }
    )

    fake_slack.wait_for("chat.postMessage")
    assert "via slack" in json.dumps(fake_slack.wait_for("hooks/vision")[0].body["blocks"])


@SQLITE_ONLY
def test_a_shutdown_does_not_wait_out_a_webhook_that_keeps_failing(
    start_slack_app: Callable[..., SlackSender], fake_slack: FakeSlack
) -> None:
    """Posts queued behind an unreachable Slack are dropped after a short grace, not retried for minutes."""
    slack = start_slack_app(slack_webhook_attempts=5, slack_webhook_backoff_seconds=2.0)
    fake_slack.webhook_statuses["vision"] = [503] * 100
    set_webhook(slack, "vision", fake_slack.webhook_url("vision"))
    for number in range(8):  # 8 posts × 5 tries × waits of 2, 4, 8, 16 s: minutes, were they all waited for
        upload(slack, oom_log(job=f"job-{number}"), team="vision", job_id=f"j-{number}")

    started = time.monotonic()
    slack.finish()

    assert time.monotonic() - started < CLOSE_GRACE_SECONDS + 10
    assert len(fake_slack.calls_to("hooks/vision")) < 8 * 5
