"""The Slack bot's work: take event deliveries at once, then download, diagnose, store and reply in the background."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.api.schemas import diagnosis_url
from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.errors import LogTooLargeError, TrainwreckError
from app.services.feedback import record_feedback
from app.services.ingest import IngestMeta, ingest_and_commit
from app.services.listeners import IngestListeners
from app.slack.blocks import FEEDBACK_RIGHT, FEEDBACK_WRONG, SlackMessage, diagnosis_message, notice_message
from app.slack.client import SlackApiError, SlackClient, SlackIdentity
from app.slack.commands import answer_command
from app.slack.events import SlackPost, post_from_event
from app.slack.files import content_problem, file_problem, reading_notice, too_large_notice, unreadable_notice
from app.slack.pasted import looks_like_crash_log, pasted_text
from app.store.repositories.slack_events import forget_slack_events_before, slack_event_seen
from app.store.types import utc_now

log = logging.getLogger(__name__)

WORKERS = 2
EVENT_MEMORY = timedelta(days=1)  # Slack stops redelivering after minutes; keep ids a day
FORGET_EVERY_SECONDS = 3600.0
SORRY = "Something went wrong while I was diagnosing this; the details are in trainwreck's own log."


class SlackService:
    """Handles Slack deliveries off the request: built in the app lifespan, `close()`d at shutdown."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: SlackClient,
        session_factory: sessionmaker[Session],
        diagnoser: Diagnoser,
        listeners: IngestListeners,
    ) -> None:
        self._settings = settings
        self._client = client
        self._sessions = session_factory
        self._diagnoser = diagnoser
        self._listeners = listeners
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="trainwreck-slack")
        self._identity: SlackIdentity | None = None
        self._identity_lock = threading.Lock()
        self._last_forget = 0.0

    def accept_event(self, envelope: dict[str, Any]) -> None:
        """Queue the delivery's work, if it asks for any, and return at once."""
        post = post_from_event(envelope)
        if post is not None:
            self._executor.submit(self._handle_logged, post)

    def team_for(self, channel: str, workspace: str | None) -> str:
        """The trainwreck team of a channel: mapped by channel id, else by workspace id, else the default."""
        teams = self._settings.slack_channel_teams
        return teams.get(channel) or teams.get(workspace or "") or self._settings.slack_default_team

    def record_feedback(self, payload: dict[str, Any]) -> int:
        """The "Right" / "Wrong: it was ..." controls of a reply: stored as the Slack user's feedback, within the
        channel's team; how many were recorded."""
        user, channel, workspace = (_mapping(payload.get(key)) for key in ("user", "channel", "team"))
        author = str(user.get("username") or user.get("name") or user.get("id") or "someone on Slack")
        team = self.team_for(str(channel.get("id") or ""), str(workspace.get("id") or "") or None)
        recorded = 0
        for action in payload.get("actions") or []:
            if not isinstance(action, dict):
                continue
            if action.get("action_id") == FEEDBACK_RIGHT:
                diagnosis, verdict, category = str(action.get("value") or ""), "right", None
            elif action.get("action_id") == FEEDBACK_WRONG:
                selected = _mapping(action.get("selected_option"))
                diagnosis, _, category = str(selected.get("value") or "").partition(":")
                verdict = "wrong"
            else:
                continue
            if not diagnosis.isdigit():
                continue
            with self._sessions.begin() as session:
                record_feedback(session, diagnosis_id=int(diagnosis), visible_team=team, verdict=verdict,
                                category=category, parameter=None, author=author, source="slack")
            recorded += 1
        return recorded

    def answer_command(self, text: str, *, command: str, channel: str, workspace: str | None) -> SlackMessage:
        """The answer to a slash command typed in a channel, from that channel's team's diagnoses."""
        with self._sessions.begin() as session:
            return answer_command(
                session,
                text,
                command=command,
                team=self.team_for(channel, workspace),
                public_url=self._settings.base_url,
                now=utc_now(),
            )

    def close(self) -> None:
        """Finish the work already queued, then stop."""
        self._executor.shutdown(wait=True)

    def _handle_logged(self, post: SlackPost) -> None:
        try:
            self._handle(post)
        except Exception:
            log.exception("Slack event %s failed", post.event_id)

    def _handle(self, post: SlackPost) -> None:
        if not self._client.configured:
            log.warning("Slack event %s ignored: no bot token configured", post.event_id)
            return
        if post.is_own(self._own_identity()):
            return
        pasted = None if post.file_ids else pasted_text(post.text)
        if not post.file_ids and pasted is None:
            return  # ordinary chat
        if self._seen(post.event_id):
            return
        team = self.team_for(post.channel, post.workspace)
        for file_id in post.file_ids:
            try:
                self._diagnose_file(post, file_id, team=team)
            except Exception:
                log.exception("Slack file %s failed", file_id)
                self._reply(post, notice_message(SORRY), thread_ts=post.thread_ts)
        if pasted is not None:
            self._diagnose_pasted(post, pasted, team=team)

    def _diagnose_file(self, post: SlackPost, file_id: str, *, team: str) -> None:
        if self._seen(f"file:{post.channel}:{file_id}"):
            return  # the same share, delivered as a message and as file_shared
        try:
            file = self._client.file_info(file_id)
        except SlackApiError as error:
            log.warning("Slack file %s: %s", file_id, error)
            self._reply(
                post, notice_message("I could not look at that file: Slack did not let me."), thread_ts=post.thread_ts
            )
            return
        thread_ts = post.thread_ts or file.share_ts(post.channel)
        if thread_ts is None:
            log.info("Slack file %s: no share in %s the bot can see; not answering", file_id, post.channel)
            return
        problem = file_problem(file, max_bytes=self._settings.slack_max_file_bytes)
        if problem is not None:
            self._reply(post, notice_message(problem), thread_ts=thread_ts)
            return
        with tempfile.TemporaryDirectory(prefix="trainwreck-slack-") as folder:
            path = Path(folder) / "log"
            try:
                with path.open("wb") as sink:
                    self._client.download(file, sink, max_bytes=self._settings.slack_max_file_bytes)
            except LogTooLargeError:
                notice = too_large_notice(file.name, max_bytes=self._settings.slack_max_file_bytes)
                self._reply(post, notice_message(notice), thread_ts=thread_ts)
                return
            except SlackApiError as error:
                log.warning("Slack file %s: %s", file_id, error)
                self._reply(
                    post, notice_message(f"I could not download `{file.name}` from Slack."), thread_ts=thread_ts
                )
                return
            problem = content_problem(
                path, name=file.name, max_decompressed_bytes=self._settings.max_decompressed_bytes
            )
            if problem is not None:
                self._reply(post, notice_message(problem), thread_ts=thread_ts)
                return
            if (size := path.stat().st_size) > self._settings.background_log_bytes:  # as the API's 202 says
                self._reply(post, notice_message(reading_notice(file.name, size)), thread_ts=thread_ts)
            self._ingest_and_reply(post, path, thread_ts=thread_ts, team=team, filename=file.name)

    def _diagnose_pasted(self, post: SlackPost, text: str, *, team: str) -> None:
        data = text.encode("utf-8")
        screening = self._diagnoser.diagnose(data, exit_code=None, progress=_no_progress)
        if not looks_like_crash_log(text, screening):
            return  # a code block, but no crash in it
        with tempfile.TemporaryDirectory(prefix="trainwreck-slack-") as folder:
            path = Path(folder) / "log"
            path.write_bytes(data)
            self._ingest_and_reply(post, path, thread_ts=post.thread_ts, team=team, filename=None)

    def _ingest_and_reply(
        self, post: SlackPost, path: Path, *, thread_ts: str | None, team: str, filename: str | None
    ) -> None:
        meta = IngestMeta(team=team, user=post.user, filename=filename, source="slack")
        try:
            result = ingest_and_commit(
                self._sessions,
                log_path=path,
                meta=meta,
                diagnoser=self._diagnoser,
                settings=self._settings,
                listeners=self._listeners,
            )
        except TrainwreckError as error:
            self._reply(
                post, notice_message(unreadable_notice(filename or "the pasted log", error)), thread_ts=thread_ts
            )
            return
        url = diagnosis_url(self._settings.base_url, result.diagnosis_id)
        message = diagnosis_message(result.diagnosis, url=url, feedback_for=result.diagnosis_id)
        self._reply(post, message, thread_ts=thread_ts)

    def _reply(self, post: SlackPost, message: SlackMessage, *, thread_ts: str | None) -> None:
        """Answer in the post's thread; without a thread to answer in, stay quiet rather than post to the channel."""
        if thread_ts is None:
            return
        try:
            self._client.post_message(channel=post.channel, message=message, thread_ts=thread_ts)
        except SlackApiError as error:
            log.warning("Slack reply in %s failed: %s", post.channel, error)

    def _seen(self, key: str) -> bool:
        """Record the key in the store; True when some replica recorded it before (a redelivery)."""
        with self._sessions.begin() as session:
            seen = slack_event_seen(session, key)
            if time.monotonic() - self._last_forget > FORGET_EVERY_SECONDS:
                self._last_forget = time.monotonic()
                forget_slack_events_before(session, utc_now() - EVENT_MEMORY)
        return seen

    def _own_identity(self) -> SlackIdentity | None:
        """The bot's ids from auth.test, asked once; None while Slack cannot tell (then every bot is us)."""
        with self._identity_lock:
            if self._identity is None:
                try:
                    self._identity = self._client.auth_test()
                except SlackApiError as error:
                    log.warning("Slack auth.test failed: %s", error)
            return self._identity


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _no_progress(_bytes_read: int) -> None:
    """Pasted text is small: no deadline to watch."""
