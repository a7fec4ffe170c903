"""Fixtures for the job-side client: `trainwreck` with its own data directory, and the programs it wraps."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from client_harness import PROGRAMS, ServerProcess, TrainwreckCommand


@pytest.fixture
def trainwreck(tmp_path: Path) -> TrainwreckCommand:
    return TrainwreckCommand(tmp_path / "data", {"submit_backoff_seconds": "0.05"})


@pytest.fixture
def program() -> Callable[[str], list[str]]:
    """The command line of one of the training-like programs in programs/."""

    def command_line(name: str) -> list[str]:
        return [sys.executable, str(PROGRAMS / f"{name}.py")]

    return command_line


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real service on SQLite, shared by the tests that only send logs to it."""
    server = ServerProcess(TrainwreckCommand(tmp_path_factory.mktemp("server") / "data"))
    server.start()
    yield server
    server.stop()
