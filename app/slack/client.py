"""A small Slack Web API client over httpx: who we are, file metadata and download, replies."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import httpx

from app.errors import LogTooLargeError
from app.slack.blocks import SlackMessage

RATE_LIMIT_RETRIES = 2
LONGEST_RETRY_AFTER_SECONDS = 30.0


class SlackApiError(Exception):
    """A Web API call failed: Slack answered `ok: false`, an HTTP error, or no answer at all."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"Slack {method}: {error}")
        self.method = method
        self.error = error


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    """The bot's own ids, from auth.test: messages carrying them are our own."""

    user_id: str | None
    bot_id: str | None


@dataclass(frozen=True, slots=True)
class SlackFile:
    """What files.info says about a file."""

    id: str
    name: str
    size: int
    mimetype: str
    filetype: str
    url_private: str | None
    shares: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> SlackFile:
        """Build from the `file` object of files.info."""
        shares: dict[str, list[dict[str, Any]]] = {}
        for visibility in ("public", "private"):
            for channel, entries in (data.get("shares") or {}).get(visibility, {}).items():
                shares.setdefault(channel, []).extend(entries)
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or data.get("title") or data["id"]),
            size=int(data.get("size") or 0),
            mimetype=str(data.get("mimetype") or ""),
            filetype=str(data.get("filetype") or ""),
            url_private=data.get("url_private"),
            shares=shares,
        )

    def share_ts(self, channel: str) -> str | None:
        """The ts of the first message that shared this file in the channel (its thread root)."""
        entries = self.shares.get(channel) or []
        if not entries:
            return None
        first = entries[0]
        return str(first.get("thread_ts") or first.get("ts") or "") or None


class SlackClient:
    """Calls the Slack Web API with the bot token; built once in the app lifespan, thread-safe."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None,
        timeout_seconds: float = 15.0,
    ) -> None:
        self._token = token
        self._http = httpx.Client(
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            timeout=timeout_seconds,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )

    @property
    def configured(self) -> bool:
        """Whether a bot token was given; without one nothing can be downloaded or posted."""
        return bool(self._token)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def auth_test(self) -> SlackIdentity:
        """The bot's user id and bot id."""
        answer = self._call("auth.test", data={})
        return SlackIdentity(user_id=answer.get("user_id"), bot_id=answer.get("bot_id"))

    def file_info(self, file_id: str) -> SlackFile:
        """files.info for one file."""
        answer = self._call("files.info", data={"file": file_id})
        return SlackFile.from_api(answer["file"])

    def download(self, file: SlackFile, destination: BinaryIO, *, max_bytes: int) -> int:
        """Stream the file's url_private into destination; LogTooLargeError past max_bytes."""
        if not file.url_private:
            raise SlackApiError("download", f"file {file.id} has no url_private")
        written = 0
        try:
            with self._http.stream("GET", file.url_private, follow_redirects=True) as response:
                if response.status_code != 200:
                    raise SlackApiError("download", f"HTTP {response.status_code}")
                if response.headers.get("content-type", "").startswith("text/html"):
                    raise SlackApiError("download", "got a web page, not the file (is files:read granted?)")
                for chunk in response.iter_bytes():
                    written += len(chunk)
                    if written > max_bytes:
                        raise LogTooLargeError(f"{file.name} is larger than {max_bytes} bytes")
                    destination.write(chunk)
        except httpx.HTTPError as error:
            raise SlackApiError("download", str(error)) from error
        return written

    def post_message(self, *, channel: str, message: SlackMessage, thread_ts: str | None = None) -> str:
        """chat.postMessage, in a thread when thread_ts is given; returns the new message's ts."""
        body: dict[str, Any] = {"channel": channel, **message.to_dict(), "unfurl_links": False}
        if thread_ts:
            body["thread_ts"] = thread_ts
        answer = self._call("chat.postMessage", json=body)
        return str(answer.get("ts", ""))

    def _call(
        self, method: str, *, data: dict[str, Any] | None = None, json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if not self._token:
            raise SlackApiError(method, "no bot token configured")
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                response = self._http.post(method, data=data, json=json)
            except httpx.HTTPError as error:
                raise SlackApiError(method, str(error)) from error
            if response.status_code == 429 and attempt < RATE_LIMIT_RETRIES:
                time.sleep(_retry_after_seconds(response))
                continue
            if response.status_code != 200:
                raise SlackApiError(method, f"HTTP {response.status_code}")
            try:
                answer: dict[str, Any] = response.json()
            except ValueError as error:
                raise SlackApiError(method, "the answer is not JSON") from error
            if not answer.get("ok"):
                raise SlackApiError(method, str(answer.get("error", "unknown_error")))
            return answer
        raise SlackApiError(method, "rate limited")


def _retry_after_seconds(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), LONGEST_RETRY_AFTER_SECONDS)
