"""The reply's "Right" / "Wrong: it was ..." controls: signed Block Kit actions stored as feedback."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
from server_support import oom_log
from slack_support import TEAM_CHANNEL, SlackSender

from app.diagnosis.model import Diagnosis
from app.slack.blocks import diagnosis_message


def _upload(slack: SlackSender, team: str) -> int:
    answer = httpx.post(slack.server.url + "/api/v1/diagnoses", content=oom_log(job=team), params={"team": team})
    return int(answer.json()["id"])


def _press(slack: SlackSender, actions: list[dict[str, Any]], **how: Any) -> httpx.Response:
    payload = {"type": "block_actions", "user": {"id": "U9", "username": "ana"}, "team": {"id": "T0FAKE"},
               "channel": {"id": TEAM_CHANNEL}, "actions": actions}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return slack.post("/slack/interactions", body, content_type="application/x-www-form-urlencoded", **how)


def _feedback(slack: SlackSender, diagnosis_id: int) -> list[dict[str, Any]]:
    return list(httpx.get(f"{slack.server.url}/api/v1/diagnoses/{diagnosis_id}/feedback").json())


def test_the_reply_carries_the_feedback_controls() -> None:
    diagnosis = Diagnosis(category="gpu_oom", stage="mid_run", step=1, total_steps=2, signature="s", title="t",
                          summary="", confidence=0.9)
    blocks = diagnosis_message(diagnosis, url="https://x/diagnoses/7", feedback_for=7).blocks
    actions = next(block for block in blocks if block["type"] == "actions")["elements"]
    assert [element["action_id"] for element in actions] == ["open_diagnosis", "feedback_right", "feedback_wrong"]
    assert actions[1]["value"] == "7"
    assert {"text": {"type": "plain_text", "text": "host_oom", "emoji": True}, "value": "7:host_oom"} in \
        actions[2]["options"]


def test_signed_presses_are_stored_with_who_pressed(slack: SlackSender) -> None:
    diagnosis_id = _upload(slack, "vision")
    assert _press(slack, [{"action_id": "feedback_right", "value": str(diagnosis_id)}]).status_code == 200
    assert _press(slack, [{"action_id": "feedback_wrong",
                           "selected_option": {"value": f"{diagnosis_id}:host_oom"}}]).status_code == 200
    stored = _feedback(slack, diagnosis_id)
    assert [(item["verdict"], item["category"], item["author"], item["source"]) for item in stored] == [
        ("right", None, "ana", "slack"), ("wrong", "host_oom", "ana", "slack")]


def test_unsigned_presses_and_other_teams_are_refused(slack: SlackSender) -> None:
    mine = _upload(slack, "vision")
    theirs = _upload(slack, "nlp")
    refused = _press(slack, [{"action_id": "feedback_right", "value": str(mine)}], secret="not-the-secret")
    assert refused.status_code == 401
    answer = _press(slack, [{"action_id": "feedback_right", "value": str(theirs)}])  # the channel is vision's
    assert answer.status_code == 200 and "no diagnosis" in answer.json()["text"]
    assert _feedback(slack, mine) == [] and _feedback(slack, theirs) == []
