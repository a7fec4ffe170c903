"""Reading Events API deliveries: which messages and shared files ask for a diagnosis."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.slack.client import SlackIdentity

MESSAGE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "bot_message"})
CHANNEL_TYPES = frozenset({None, "channel", "group"})


@dataclass(frozen=True, slots=True)
class SlackPost:
    """A message or file share in a channel, reduced to what a diagnosis needs."""

    event_id: str
    workspace: str | None
    app_id: str | None  # our own app, as the delivery names it
    channel: str
    thread_ts: str | None  # where to reply; None for file_shared (found through files.info)
    user: str | None
    bot_id: str | None
    sender_app_id: str | None
    from_bot: bool
    file_ids: tuple[str, ...]
    text: str

    def is_own(self, identity: SlackIdentity | None) -> bool:
        """Whether we posted this (a reply, or a webhook post of ours); unknown identity: any bot."""
        if self.app_id and self.sender_app_id == self.app_id:
            return True
        if identity is None:
            return self.from_bot
        return (self.user is not None and self.user == identity.user_id) or (
            self.bot_id is not None and self.bot_id == identity.bot_id
        )


def post_from_event(envelope: Mapping[str, Any]) -> SlackPost | None:
    """The post an `event_callback` delivery is about, or None when it is nothing to diagnose."""
    event = envelope.get("event")
    if envelope.get("type") != "event_callback" or not isinstance(event, dict) or not envelope.get("event_id"):
        return None
    if event.get("type") == "message":
        return _message_post(envelope, event)
    if event.get("type") == "file_shared":
        return _file_shared_post(envelope, event)
    return None


def _message_post(envelope: Mapping[str, Any], event: dict[str, Any]) -> SlackPost | None:
    subtype = event.get("subtype")
    if subtype not in MESSAGE_SUBTYPES or event.get("channel_type") not in CHANNEL_TYPES:
        return None
    if not event.get("channel") or not event.get("ts"):
        return None
    files = event.get("files") or []
    return SlackPost(
        event_id=str(envelope["event_id"]),
        workspace=envelope.get("team_id"),
        app_id=envelope.get("api_app_id"),
        channel=str(event["channel"]),
        thread_ts=str(event.get("thread_ts") or event["ts"]),
        user=event.get("user"),
        bot_id=event.get("bot_id"),
        sender_app_id=event.get("app_id") or (event.get("bot_profile") or {}).get("app_id"),
        from_bot=bool(event.get("bot_id")) or subtype == "bot_message",
        file_ids=tuple(str(file["id"]) for file in files if isinstance(file, dict) and file.get("id")),
        text=str(event.get("text") or ""),
    )


def _file_shared_post(envelope: Mapping[str, Any], event: dict[str, Any]) -> SlackPost | None:
    file_id = event.get("file_id") or (event.get("file") or {}).get("id")
    if not file_id or not event.get("channel_id"):
        return None
    return SlackPost(
        event_id=str(envelope["event_id"]),
        workspace=envelope.get("team_id"),
        app_id=envelope.get("api_app_id"),
        channel=str(event["channel_id"]),
        thread_ts=None,
        user=event.get("user_id"),
        bot_id=None,
        sender_app_id=None,
        from_bot=False,
        file_ids=(str(file_id),),
        text="",
    )
