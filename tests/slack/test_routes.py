"""The signed Slack routes over real HTTP: signatures, the URL check, the slash command."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import oom_log
from slack_support import PUBLIC_URL, SQLITE_ONLY, SlackSender

URL_CHECK = json.dumps(
    {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}
).encode()


@SQLITE_ONLY
def test_the_url_check_is_answered_with_its_challenge(slack: SlackSender) -> None:
    response = slack.post("/slack/events", URL_CHECK, content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@SQLITE_ONLY
@pytest.mark.parametrize("path", ["/slack/events", "/slack/commands"])
@pytest.mark.parametrize(
    "how",
    [
        pytest.param({"secret": "not-the-signing-secret"}, id="wrong secret"),
        pytest.param({"age_seconds": 5 * 60 + 30}, id="older than five minutes"),
        pytest.param({"age_seconds": -(5 * 60 + 30)}, id="from the future"),
    ],
)
def test_badly_signed_requests_are_refused(slack: SlackSender, path: str, how: dict[str, Any]) -> None:
    response = slack.post(path, URL_CHECK, content_type="application/json", **how)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@SQLITE_ONLY
def test_a_replayed_request_with_an_old_timestamp_is_refused(slack: SlackSender) -> None:
    signed = slack.post("/slack/events", URL_CHECK, content_type="application/json", age_seconds=10 * 60)

    assert signed.status_code == 401


@SQLITE_ONLY
def test_unsigned_and_tampered_requests_are_refused(slack: SlackSender) -> None:
    unsigned = slack.http.post("/slack/events", content=URL_CHECK, headers={"Content-Type": "application/json"})
    good = slack.post("/slack/events", URL_CHECK, content_type="application/json")
    tampered = slack.http.post(
        "/slack/events",
        content=URL_CHECK.replace(b"3eZb", b"XXXX"),
        headers={key: good.request.headers[key] for key in ("X-Slack-Request-Timestamp", "X-Slack-Signature")},
    )

    assert unsigned.status_code == 401
    assert set(unsigned.json()) == {"error"}
    assert set(unsigned.json()["error"]) == {"code", "message"}
    assert tampered.status_code == 401


@SQLITE_ONLY
def test_without_a_signing_secret_the_slack_routes_are_unavailable(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(slack_signing_secret=None)) as client:
        events = client.post("/slack/events", content=URL_CHECK)
        commands = client.post("/slack/commands", content=b"text=help")

    assert (events.status_code, commands.status_code) == (503, 503)
    assert events.json()["error"]["code"] == "slack_not_configured"


@SQLITE_ONLY
def test_a_signed_body_that_is_not_json_is_a_bad_request(slack: SlackSender) -> None:
    response = slack.post("/slack/events", b"payload=not-json", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def upload(slack: SlackSender, log: bytes, *, team: str, job_id: str) -> int:
    response = slack.http.post("/api/v1/diagnoses", params={"team": team, "job_id": job_id}, content=log)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def blocks_text(answer: dict[str, Any]) -> str:
    return json.dumps(answer["blocks"], ensure_ascii=False)


def test_the_command_shows_a_diagnosis_by_id_or_job_id_to_whoever_asked(slack: SlackSender) -> None:
    diagnosis_id = upload(slack, oom_log(step=853), team="vision", job_id="slurm-4242")

    by_id = slack.command(str(diagnosis_id))
    by_job = slack.command("slurm-4242")

    assert by_id["response_type"] == "ephemeral"
    assert "`gpu_oom`" in blocks_text(by_id)
    assert f"{PUBLIC_URL}/diagnoses/{diagnosis_id}" in blocks_text(by_id)
    assert by_job["blocks"] == by_id["blocks"]


def test_a_numeric_job_id_is_found_when_no_diagnosis_has_that_id(slack: SlackSender) -> None:
    diagnosis_id = upload(slack, oom_log(), team="vision", job_id="918273")

    assert f"/diagnoses/{diagnosis_id}" in blocks_text(slack.command("918273"))
    assert f"/diagnoses/{diagnosis_id}" in blocks_text(slack.command("job 918273"))


def test_the_command_sees_only_the_channels_team(slack: SlackSender) -> None:
    diagnosis_id = upload(slack, oom_log(), team="nlp", job_id="nlp-1")

    answer = slack.command(str(diagnosis_id))

    assert "has no diagnosis" in answer["text"]
    assert "has no diagnosis" in slack.command("nlp-1")["text"]


def test_stats_count_the_teams_last_week_by_category(slack: SlackSender) -> None:
    upload(slack, oom_log(job="a"), team="vision", job_id="a")
    upload(slack, oom_log(job="b"), team="vision", job_id="b")
    upload(slack, oom_log(job="c"), team="nlp", job_id="c")

    answer = slack.command("stats")

    assert answer["response_type"] == "ephemeral"
    assert "*vision*: 2 diagnoses in the last 7 days" in blocks_text(answer)
    assert "`gpu_oom`: 2" in blocks_text(answer)


@SQLITE_ONLY
def test_help_explains_the_command(slack: SlackSender) -> None:
    assert "`/trainwreck stats`" in blocks_text(slack.command("help"))
    assert "`/trainwreck stats`" in blocks_text(slack.command(""))
    assert "did not understand" in slack.command("show me everything")["text"]


@SQLITE_ONLY
@pytest.mark.parametrize("path", ["/slack/events", "/slack/commands"])
def test_an_unsigned_huge_body_is_refused_before_it_is_read(slack: SlackSender, path: str) -> None:
    def endless() -> Iterator[bytes]:  # 64 MiB if read: the server must answer after the headers alone
        for _ in range(64):
            yield b"x" * (1 << 20)

    response = slack.http.post(path, content=endless(), headers={"content-type": "application/json"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@SQLITE_ONLY
def test_a_signed_body_larger_than_slack_sends_is_refused(slack: SlackSender) -> None:
    response = slack.post("/slack/events", b'{"type": "event_callback", "pad": "' + b"x" * (2 << 20) + b'"}',
                          content_type="application/json")

    assert response.status_code == 413
