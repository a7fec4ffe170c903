"""The `trainwreck` command run as a real subprocess, the way a job runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        env.update(PYTHONPATH=str(REPOSITORY), NO_COLOR="1", TRAINWRECK_DATA_DIR=str(self.data_dir))
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
