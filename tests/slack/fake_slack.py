"""A fake Slack on loopback: the Web API methods trainwreck calls, file downloads and incoming webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT_TOKEN = "xoxb-fake-bot-token"
BOT_USER_ID = "UTRAINWRECK"
BOT_ID = "BTRAINWRECK"


@dataclass(frozen=True)
class RecordedCall:
    """One request the fake received."""

    path: str  # "chat.postMessage", "files.info", "auth.test", "download", or "hooks/<name>"
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeFile:
    info: dict[str, Any]
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass
class FakeSlack:
    """The fake's state; `start()` serves it on 127.0.0.1 on a free port."""

    calls: list[RecordedCall] = field(default_factory=list)
    files: dict[str, FakeFile] = field(default_factory=dict)
    webhook_statuses: dict[str, list[int]] = field(default_factory=dict)
    files_info_delay_seconds: float = 0.0  # a slow Slack, to show the acknowledgement does not wait
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _message_count: int = 0

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def webhook_url(self, name: str) -> str:
        return f"{self.base_url}/hooks/{name}"

    def add_file(
        self,
        file_id: str,
        content: bytes,
        *,
        name: str = "train.log",
        channel: str = "C0TRAIN",
        ts: str = "1700000000.000100",
        mimetype: str = "text/plain",
        filetype: str = "text",
        size: int | None = None,
    ) -> None:
        """A file shared in a channel, served at its url_private."""
        self.files[file_id] = FakeFile(
            info={
                "id": file_id,
                "name": name,
                "mimetype": mimetype,
                "filetype": filetype,
                "size": len(content) if size is None else size,
                "url_private": f"{self.base_url}/files-pri/{file_id}/{name}",
                "shares": {"public": {channel: [{"ts": ts}]}},
            },
            content=content,
            content_type=mimetype,
        )

    def calls_to(self, path: str) -> list[RecordedCall]:
        with self._lock:
            return [call for call in self.calls if call.path == path]

    def wait_for(self, path: str, *, count: int = 1, timeout: float = 15.0) -> list[RecordedCall]:
        """Wait until `count` calls to path arrived; fail the test if they do not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls_to(path)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} call(s) to {path}, got {len(self.calls_to(path))}")

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _record(self, call: RecordedCall) -> None:
        with self._lock:
            self.calls.append(call)

    def _next_ts(self) -> str:
        with self._lock:
            self._message_count += 1
            return f"1700000100.{self._message_count:06d}"

    def _next_webhook_status(self, name: str) -> int:
        with self._lock:
            statuses = self.webhook_statuses.get(name) or []
            return statuses.pop(0) if statuses else 200


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path.startswith("/files-pri/"):
                self._download(path.split("/")[2])
            else:
                self._reply(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            split = urlsplit(self.path)
            body = self._body()
            if split.path.startswith("/hooks/"):
                name = split.path.removeprefix("/hooks/")
                fake._record(RecordedCall(f"hooks/{name}", dict(self.headers), body))
                status = fake._next_webhook_status(name)
                self._reply(status, b"ok" if status == 200 else b"server_error", "text/plain")
                return
            method = split.path.removeprefix("/api/")
            fake._record(RecordedCall(method, dict(self.headers), body))
            if self.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                self._json({"ok": False, "error": "invalid_auth"})
                return
            handler: Callable[[dict[str, Any]], dict[str, Any]] | None = {
                "auth.test": self._auth_test,
                "files.info": self._files_info,
                "chat.postMessage": self._post_message,
            }.get(method)
            self._json(handler(body) if handler else {"ok": False, "error": "unknown_method"})

        def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
            return {"ok": True, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "team_id": "T0FAKE"}

        def _files_info(self, body: dict[str, Any]) -> dict[str, Any]:
            time.sleep(fake.files_info_delay_seconds)
            file = fake.files.get(str(body.get("file")))
            if file is None:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "file": file.info}

        def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
            return {"ok": True, "channel": body.get("channel"), "ts": fake._next_ts()}

        def _download(self, file_id: str) -> None:
            fake._record(RecordedCall("download", dict(self.headers), {"file": file_id}))
            file = fake.files.get(file_id)
            if self.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                self._reply(200, b"<html>Sign in to Slack</html>", "text/html")
            elif file is None:
                self._reply(404, b"not found", "text/plain")
            else:
                self._reply(200, file.content, file.content_type)

        def _body(self) -> dict[str, Any]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Type", "").startswith("application/json"):
                return json.loads(raw or b"{}")
            return {key: values[0] for key, values in parse_qs(raw.decode()).items()}

        def _json(self, payload: dict[str, Any]) -> None:
            self._reply(200, json.dumps(payload).encode(), "application/json")

        def _reply(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
