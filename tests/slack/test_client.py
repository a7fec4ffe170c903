from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fake_slack import BOT_ID, BOT_TOKEN, BOT_USER_ID, FakeSlack

from app.errors import LogTooLargeError
from app.slack.blocks import notice_message
from app.slack.client import SlackApiError, SlackClient


@pytest.fixture
def client(fake_slack: FakeSlack) -> Iterator[SlackClient]:
    client = SlackClient(base_url=fake_slack.api_url, token=BOT_TOKEN)
    yield client
    client.close()


def test_auth_test_names_the_bot(client: SlackClient) -> None:
    identity = client.auth_test()

    assert (identity.user_id, identity.bot_id) == (BOT_USER_ID, BOT_ID)


def test_file_info_and_download_use_the_bot_token(fake_slack: FakeSlack, client: SlackClient) -> None:
    fake_slack.add_file("F1", b"step 1 loss 2.0\n", channel="C1", ts="1700000000.000200")

    file = client.file_info("F1")
    sink = io.BytesIO()
    written = client.download(file, sink, max_bytes=1000)

    assert (file.name, file.size, file.share_ts("C1"), file.share_ts("C2")) == (
        "train.log",
        16,
        "1700000000.000200",
        None,
    )
    assert (written, sink.getvalue()) == (16, b"step 1 loss 2.0\n")
    assert fake_slack.calls_to("download")[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"


def test_download_stops_past_the_size_limit(fake_slack: FakeSlack, client: SlackClient) -> None:
    fake_slack.add_file("F1", b"x" * 5000, size=10)  # files.info understates the size

    with pytest.raises(LogTooLargeError):
        client.download(client.file_info("F1"), io.BytesIO(), max_bytes=1000)


def test_a_sign_in_page_instead_of_the_file_is_an_error(fake_slack: FakeSlack) -> None:
    fake_slack.add_file("F1", b"log\n")
    wrong_token = SlackClient(base_url=fake_slack.api_url, token=BOT_TOKEN)
    file = wrong_token.file_info("F1")
    wrong_token.close()
    unauthenticated = SlackClient(base_url=fake_slack.api_url, token="xoxb-revoked")

    with pytest.raises(SlackApiError, match="web page"):
        unauthenticated.download(file, io.BytesIO(), max_bytes=1000)
    with pytest.raises(SlackApiError, match="invalid_auth"):
        unauthenticated.auth_test()
    unauthenticated.close()


def test_post_message_replies_in_the_thread(fake_slack: FakeSlack, client: SlackClient) -> None:
    ts = client.post_message(channel="C1", message=notice_message("hi"), thread_ts="1700000000.000100")

    body = fake_slack.calls_to("chat.postMessage")[0].body
    assert ts
    assert (body["channel"], body["thread_ts"], body["text"]) == ("C1", "1700000000.000100", "hi")


def test_without_a_token_nothing_is_called(fake_slack: FakeSlack) -> None:
    client = SlackClient(base_url=fake_slack.api_url, token=None)

    with pytest.raises(SlackApiError, match="no bot token"):
        client.auth_test()
    assert not client.configured
    assert fake_slack.calls == []
    client.close()
