"""A cap on request bodies for every route but the log upload (which streams to disk under its own limit).

Dependencies such as the token check run after FastAPI has read a route's body, so without a cap an
unauthenticated request could make the server hold a body of any size before it is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1 << 20  # JSON and forms the API and pages take are far smaller


class BodyLimitMiddleware:
    """413 for a declared or streamed body over the cap, before or as soon as it is reached."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES, exempt: Callable[[Scope], bool]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not refused:
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}  # the app stops reading; its answer goes nowhere
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, tracking_send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": {"code": "too_large",
                                     "message": f"the request body is over {self.max_bytes} bytes"}}).encode()
        headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                              (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def is_log_upload(scope: Scope) -> bool:
    """The one route that takes large bodies: POST /api/v1/diagnoses."""
    return scope.get("method") == "POST" and scope.get("path", "").rstrip("/") == "/api/v1/diagnoses"
