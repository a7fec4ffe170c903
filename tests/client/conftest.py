"""Fixtures for the job-side client: `trainwreck` with its own data directory, and the programs it wraps."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from client_harness import PROGRAMS, TrainwreckCommand


@pytest.fixture
def trainwreck(tmp_path: Path) -> TrainwreckCommand:
    return TrainwreckCommand(tmp_path / "data", {"submit_backoff_seconds": "0.05"})


@pytest.fixture
def program() -> Callable[[str], list[str]]:
    """The command line of one of the training-like programs in programs/."""

    def command_line(name: str) -> list[str]:
        return [sys.executable, str(PROGRAMS / f"{name}.py")]

    return command_line
