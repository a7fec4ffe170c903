"""The bot end to end: Slack deliveries over loopback in, diagnoses stored, replies in the fake Slack's threads."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from fake_slack import BOT_ID, BOT_USER_ID, FakeSlack, RecordedCall
from server_support import oom_log
from slack_support import APP_ID, PUBLIC_URL, SQLITE_ONLY, TEAM_CHANNEL, SlackSender
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import DiagnosisRecord

MESSAGE_TS = "1700000000.000100"


def file_message(*file_ids: str, channel: str = TEAM_CHANNEL, **fields: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "file_share",
        "channel": channel,
        "channel_type": "channel",
        "user": "U0ALICE",
        "ts": MESSAGE_TS,
        "text": "job 4242 died",
        "files": [{"id": file_id, "name": "train.log"} for file_id in file_ids],
        **fields,
    }


def text_message(text: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": TEAM_CHANNEL,
        "channel_type": "channel",
        "user": "U0ALICE",
        "ts": MESSAGE_TS,
        "text": text,
        **fields,
    }


def stored(session_factory: sessionmaker[Session]) -> list[DiagnosisRecord]:
    with session_factory() as session:
        return list(session.scalars(select(DiagnosisRecord).order_by(DiagnosisRecord.id)))


def reply_text(call: RecordedCall) -> str:
    return json.dumps(call.body["blocks"], ensure_ascii=False) + call.body["text"]


def test_an_attached_log_is_diagnosed_stored_under_the_channels_team_and_answered_in_its_thread(
    slack: SlackSender, fake_slack: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    fake_slack.add_file("F0LOG", oom_log(step=850), channel=TEAM_CHANNEL, ts=MESSAGE_TS)

    slack.event(file_message("F0LOG"))

    reply = fake_slack.wait_for("chat.postMessage")[0]
    [record] = stored(session_factory)
    assert (reply.body["channel"], reply.body["thread_ts"]) == (TEAM_CHANNEL, MESSAGE_TS)
    assert "`gpu_oom`" in reply_text(reply)
    assert "step 850 of 1900" in reply_text(reply)
    assert "`per_device_train_batch_size` `4` → `2`" in reply_text(reply)
    assert f"{PUBLIC_URL}/diagnoses/{record.id}" in reply_text(reply)
    assert (record.team.name, record.source, record.filename, record.user) == (
        "vision",
        "slack",
        "train.log",
        "U0ALICE",
    )
    download = fake_slack.calls_to("download")[0]
    assert download.headers["Authorization"] == "Bearer xoxb-fake-bot-token"


@SQLITE_ONLY
def test_a_compressed_log_in_an_unmapped_channel_goes_to_the_default_team(
    slack: SlackSender, fake_slack: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    fake_slack.add_file(
        "F0GZ",
        gzip.compress(oom_log()),
        name="train.log.gz",
        channel="C0OTHER",
        mimetype="application/gzip",
        filetype="gzip",
    )

    slack.event(file_message("F0GZ", channel="C0OTHER"))

    assert "`gpu_oom`" in reply_text(fake_slack.wait_for("chat.postMessage")[0])
    assert [record.team.name for record in stored(session_factory)] == ["default"]


@SQLITE_ONLY
def test_the_acknowledgement_does_not_wait_for_the_diagnosis(slack: SlackSender, fake_slack: FakeSlack) -> None:
    fake_slack.files_info_delay_seconds = 6.0
    fake_slack.add_file("F0SLOW", oom_log())

    started = time.monotonic()
    slack.event(file_message("F0SLOW"))
    acknowledged = time.monotonic() - started

    assert acknowledged < 3.0  # well before the file could be read: a busy machine took 1.5 s to answer
    assert fake_slack.calls_to("chat.postMessage") == []
    fake_slack.wait_for("chat.postMessage")


def test_redeliveries_of_an_event_give_one_diagnosis_and_one_reply(
    slack: SlackSender, fake_slack: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    fake_slack.files_info_delay_seconds = 0.3  # the redeliveries arrive while the first is still at work
    fake_slack.add_file("F0LOG", oom_log())

    slack.event(file_message("F0LOG"), event_id="Ev0REPEAT")
    slack.event(file_message("F0LOG"), event_id="Ev0REPEAT", retry=1)
    slack.event(file_message("F0LOG"), event_id="Ev0REPEAT", retry=2)
    slack.finish()

    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert len(fake_slack.calls_to("files.info")) == 1
    assert len(stored(session_factory)) == 1


def test_a_file_delivered_as_a_message_and_as_file_shared_is_answered_once(
    slack: SlackSender, fake_slack: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    fake_slack.add_file("F0LOG", oom_log(), channel=TEAM_CHANNEL, ts=MESSAGE_TS)

    slack.event(file_message("F0LOG"), event_id="Ev0MESSAGE")
    slack.event(
        {
            "type": "file_shared",
            "file_id": "F0LOG",
            "user_id": "U0ALICE",
            "file": {"id": "F0LOG"},
            "channel_id": TEAM_CHANNEL,
            "event_ts": MESSAGE_TS,
        },
        event_id="Ev0SHARED",
    )
    slack.finish()

    [reply] = fake_slack.calls_to("chat.postMessage")
    assert reply.body["thread_ts"] == MESSAGE_TS
    assert len(stored(session_factory)) == 1


@SQLITE_ONLY
def test_file_shared_alone_is_answered_in_the_thread_of_the_share(slack: SlackSender, fake_slack: FakeSlack) -> None:
    fake_slack.add_file("F0LOG", oom_log(), channel=TEAM_CHANNEL, ts="1700000555.000200")

    slack.event(
        {
            "type": "file_shared",
            "file_id": "F0LOG",
            "user_id": "U0ALICE",
            "file": {"id": "F0LOG"},
            "channel_id": TEAM_CHANNEL,
            "event_ts": "1700000555.000300",
        }
    )

    assert fake_slack.wait_for("chat.postMessage")[0].body["thread_ts"] == "1700000555.000200"


@SQLITE_ONLY
@pytest.mark.parametrize(
    "sender",
    [
        pytest.param({"user": BOT_USER_ID}, id="our bot user"),
        pytest.param({"user": None, "bot_id": BOT_ID, "subtype": "bot_message"}, id="our bot"),
        pytest.param({"user": None, "bot_id": "B0HOOK", "subtype": "bot_message", "app_id": APP_ID}, id="our webhook"),
    ],
)
def test_our_own_messages_are_ignored(
    slack: SlackSender, fake_slack: FakeSlack, session_factory: sessionmaker[Session], sender: dict[str, Any]
) -> None:
    pasted = "```" + oom_log().decode() + "```"

    slack.event(text_message(pasted, **sender))
    slack.finish()

    assert fake_slack.calls_to("chat.postMessage") == []
    assert stored(session_factory) == []


@SQLITE_ONLY
def test_another_bots_log_is_diagnosed(slack: SlackSender, fake_slack: FakeSlack) -> None:
    pasted = "```" + oom_log().decode() + "```"

    slack.event(text_message(pasted, user=None, bot_id="B0SLURMBOT", subtype="bot_message", app_id="A0SLURM"))

    assert "`gpu_oom`" in reply_text(fake_slack.wait_for("chat.postMessage")[0])


@SQLITE_ONLY
def test_a_big_log_is_acknowledged_in_its_thread_before_its_diagnosis(
    start_slack_app: Callable[..., SlackSender], fake_slack: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    """Past the size the API answers 202 for, the thread hears that the log is being read, then the diagnosis."""
    log = oom_log(step=850)
    slack = start_slack_app(background_log_bytes=len(log) - 1)
    fake_slack.add_file("F0LOG", log, channel=TEAM_CHANNEL, ts=MESSAGE_TS)

    slack.event(file_message("F0LOG"))
    notice, answer = fake_slack.wait_for("chat.postMessage", count=2)

    assert f"Reading `train.log` ({len(log):,} bytes); I will answer here once it is diagnosed" in notice.body["text"]
    assert "`gpu_oom`" in reply_text(answer)
    assert notice.body["thread_ts"] == answer.body["thread_ts"] == MESSAGE_TS
    assert len(stored(session_factory)) == 1


@SQLITE_ONLY
def test_a_file_over_the_size_limit_gets_a_polite_reply_and_is_not_downloaded(
    start_slack_app: Callable[..., SlackSender], fake_slack: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    slack = start_slack_app(slack_max_file_bytes=1000)
    fake_slack.add_file("F0BIG", b"x" * 1001, name="huge.log")

    slack.event(file_message("F0BIG"))

    reply = fake_slack.wait_for("chat.postMessage")[0]
    assert reply.body["thread_ts"] == MESSAGE_TS
    assert "`huge.log` is larger than the 1,000 bytes I download from Slack" in reply.body["text"]
    assert "trainwreck submit huge.log" in reply.body["text"]
    assert fake_slack.calls_to("download") == []
    assert stored(session_factory) == []


@SQLITE_ONLY
def test_a_file_bigger_than_slack_said_is_cut_off_with_a_polite_reply(
    start_slack_app: Callable[..., SlackSender], fake_slack: FakeSlack
) -> None:
    slack = start_slack_app(slack_max_file_bytes=1000)
    fake_slack.add_file("F0BIG", oom_log() * 10, name="huge.log", size=500)

    slack.event(file_message("F0BIG"))

    assert "is larger than" in fake_slack.wait_for("chat.postMessage")[0].body["text"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("content", "mimetype", "expected"),
    [
        pytest.param(
            b"\x89PNG\r\n\x1a\n" + os.urandom(2000), "image/png", "is an image, not a training log", id="image"
        ),
        pytest.param(os.urandom(4000), "application/octet-stream", "is not text", id="binary"),
        pytest.param(b"", "text/plain", "is empty", id="empty"),
        pytest.param(gzip.compress(oom_log())[:40], "application/gzip", "I could not read", id="corrupt gzip"),
    ],
)
def test_files_that_are_not_logs_get_a_polite_reply(
    slack: SlackSender,
    fake_slack: FakeSlack,
    session_factory: sessionmaker[Session],
    content: bytes,
    mimetype: str,
    expected: str,
) -> None:
    fake_slack.add_file("F0ODD", content, name="thing.bin", mimetype=mimetype)

    slack.event(file_message("F0ODD"))

    reply = fake_slack.wait_for("chat.postMessage")[0]
    assert reply.body["thread_ts"] == MESSAGE_TS
    assert expected in reply.body["text"]
    assert stored(session_factory) == []


def test_a_pasted_crash_log_is_diagnosed(
    slack: SlackSender, fake_slack: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    pasted = "my run died, any idea?\n```" + oom_log().decode().replace("<", "&lt;").replace(">", "&gt;") + "```"

    slack.event(text_message(pasted))

    reply = fake_slack.wait_for("chat.postMessage")[0]
    assert reply.body["thread_ts"] == MESSAGE_TS
    assert "`gpu_oom`" in reply_text(reply)
    assert [(record.team.name, record.source) for record in stored(session_factory)] == [("vision", "slack")]


@SQLITE_ONLY
def test_a_pasted_traceback_in_a_thread_is_answered_in_that_thread(slack: SlackSender, fake_slack: FakeSlack) -> None:
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "train.py", line 12, in &lt;module&gt;\n'
        "    batch = collator(features)\n"
        "KeyError: 'input_ids'"
    )

    slack.event(text_message(traceback, thread_ts="1699999999.000001"))

    assert fake_slack.wait_for("chat.postMessage")[0].body["thread_ts"] == "1699999999.000001"


@SQLITE_ONLY
def test_ordinary_chat_is_ignored_silently(
    slack: SlackSender, fake_slack: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    slack.event(text_message("the run hit CUDA out of memory again :( lunch?"), event_id="Ev1")
    slack.event(text_message("```SELECT count(*) FROM runs;```"), event_id="Ev2")
    slack.event(text_message("edited", subtype="message_changed"), event_id="Ev3")
    slack.finish()

    assert fake_slack.calls_to("chat.postMessage") == []
    assert stored(session_factory) == []
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(DiagnosisRecord)) == 0
