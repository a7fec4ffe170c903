from __future__ import annotations

from typing import Any

from app.slack.client import SlackIdentity
from app.slack.events import post_from_event

IDENTITY = SlackIdentity(user_id="UBOT", bot_id="BBOT")


def delivery(event: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event_callback", "event_id": "Ev1", "team_id": "T1", "api_app_id": "A1", "event": event}


def message(**fields: Any) -> dict[str, Any]:
    return delivery(
        {
            "type": "message",
            "channel": "C1",
            "channel_type": "channel",
            "user": "U1",
            "ts": "1.000100",
            "text": "hi",
            **fields,
        }
    )


def test_a_message_with_files_asks_for_each_file_in_its_thread() -> None:
    post = post_from_event(message(subtype="file_share", files=[{"id": "F1"}, {"id": "F2"}]))

    assert post is not None
    assert (post.channel, post.thread_ts, post.file_ids, post.workspace) == ("C1", "1.000100", ("F1", "F2"), "T1")


def test_a_reply_in_a_thread_is_answered_in_that_thread() -> None:
    post = post_from_event(message(thread_ts="0.000001"))

    assert post is not None
    assert post.thread_ts == "0.000001"


def test_file_shared_names_the_file_and_channel_but_no_thread() -> None:
    post = post_from_event(delivery({"type": "file_shared", "file_id": "F9", "channel_id": "C2", "user_id": "U1"}))

    assert post is not None
    assert (post.channel, post.thread_ts, post.file_ids) == ("C2", None, ("F9",))


def test_edits_joins_direct_messages_and_other_events_are_nothing_to_do() -> None:
    assert post_from_event(message(subtype="message_changed")) is None
    assert post_from_event(message(subtype="channel_join")) is None
    assert post_from_event(message(channel_type="im")) is None
    assert post_from_event(delivery({"type": "app_mention", "channel": "C1"})) is None
    assert post_from_event({"type": "url_verification", "challenge": "x"}) is None


def test_our_own_messages_are_recognised() -> None:
    def own(**fields: Any) -> bool:
        post = post_from_event(message(**fields))
        assert post is not None
        return post.is_own(IDENTITY)

    assert own(user="UBOT")
    assert own(bot_id="BBOT", subtype="bot_message", user=None)
    assert own(bot_id="BWEBHOOK", subtype="bot_message", app_id="A1")
    assert not own(bot_id="BJOBS", subtype="bot_message", user=None)
    assert not own()


def test_without_our_identity_every_bot_counts_as_us() -> None:
    post = post_from_event(message(bot_id="BJOBS", subtype="bot_message"))

    assert post is not None
    assert post.is_own(None)
    human = post_from_event(message())
    assert human is not None
    assert not human.is_own(None)
