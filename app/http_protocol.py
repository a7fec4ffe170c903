"""uvicorn's HTTP protocol with a deadline for request headers.

uvicorn bounds the wait between requests of a kept-alive connection, but not the wait for a request's
headers: a client that connects and sends nothing, or dribbles its headers a byte at a time, holds a
socket and a file descriptor forever. Here every request (the first of a connection included) must have
its headers in within `header_timeout_seconds`, or the connection is closed. Bodies have their own bound
(`upload_idle_timeout_seconds`, read by the upload route).
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings

logger = logging.getLogger(__name__)


@cache
def header_timeout_seconds() -> float:
    """The setting, read once per process (server workers get it through the environment)."""
    return Settings.read().header_timeout_seconds


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must have their headers in within header_timeout_seconds()."""

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._await_headers()

    def on_headers_complete(self) -> None:
        self._headers_in()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_in()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._headers_in()
        self._header_deadline = self.loop.call_later(header_timeout_seconds(), self._headers_too_slow)

    def _headers_in(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            logger.info("closing a connection that sent no complete request headers within %g s",
                        header_timeout_seconds())
            self.transport.close()
