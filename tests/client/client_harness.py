"""The `trainwreck` command run as a real subprocess, the way a job runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

import httpx

REPOSITORY = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).with_name("programs")


@dataclass
class TrainwreckCommand:
    """`trainwreck` as a job would run it, with its own data directory and TRAINWRECK_* settings."""

    data_dir: Path
    settings: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The environment: ours without any TRAINWRECK_* setting, then this command's settings."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("TRAINWRECK_")}
        env.update(PYTHONPATH=str(REPOSITORY), NO_COLOR="1", TRAINWRECK_DATA_DIR=str(self.data_dir),
                   TRAINWRECK_CLIENT_DIR=str(self.data_dir))
        env.update({f"TRAINWRECK_{name.upper()}": value for name, value in self.settings.items()})
        return env

    def argv(self, *args: str | Path) -> list[str]:
        """The command line of `trainwreck ARGS...`."""
        return [sys.executable, "-m", "app.cli", *map(str, args)]

    def run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """Run it to the end and capture its output."""
        return subprocess.run(
            self.argv(*args),
            env=self.env(),
            cwd=self.data_dir.parent,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str | Path, **popen_options: Any) -> subprocess.Popen[bytes]:
        """Start it in the background."""
        return subprocess.Popen(self.argv(*args), env=self.env(), cwd=self.data_dir.parent, **popen_options)

    def run_logs(self) -> list[Path]:
        """The logs `trainwreck run` kept, oldest first."""
        return sorted((self.data_dir / "runs").glob("*.log"))

    def spooled_logs(self) -> list[Path]:
        """The logs waiting in the spool."""
        return sorted((self.data_dir / "spool").glob("*.log"))


def api_get(server_url: str, path: str, *, token: str | None = None, **params: Any) -> Any:
    """GET a route of the API and return its JSON."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{server_url}{path}", params=params, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()


class FailingGateway:
    """A proxy with no healthy backend: answers every request 502 and counts them."""

    def __init__(self) -> None:
        self.requests = 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                gateway.requests += 1
                _read_chunked_body(self.rfile)
                body = b'{"error": {"code": "bad_gateway", "message": "no healthy upstream"}}'
                self.send_response(502)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FailingGateway:
        self._thread.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _read_chunked_body(stream: BinaryIO) -> None:
    while size := int(stream.readline().split(b";")[0], 16):
        stream.read(size + 2)
    stream.readline()
