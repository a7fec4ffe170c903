"""`check` where the run will start: the machine read here, the files the command names read from disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.check.checker import CheckReport, CommandError
from app.check.machine import read_machine
from app.config import Settings
from app.diagnoser import build_checker

MAX_FILE_BYTES = 1 << 20


def read_script(path: Path) -> str:
    """A launch script's text (CommandError when unreadable or too large to be one)."""
    text = _read(path)
    if text is None:
        raise CommandError(f"cannot read {path}, or it is larger than {MAX_FILE_BYTES >> 20} MiB")
    return text


def _read(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return None if len(data) > MAX_FILE_BYTES else data.decode("utf-8", "replace")


def read_config_file(name: str) -> str | None:
    """A file the command names (a YAML config, a DeepSpeed JSON, a model's config.json), if readable."""
    path = Path(name).expanduser()
    return _read(path) if path.is_file() else None


def check_here(
    settings: Settings,
    text: str,
    *,
    overrides: dict[str, Any] | None = None,
    rule_dirs: Sequence[Path] = (),
    framework_dirs: Sequence[Path] = (),
) -> CheckReport:
    """Check a launch command against this machine, its facts overridden where given."""
    checker = build_checker(settings, rule_dirs, framework_dirs)
    output_dir, datasets = checker.paths(text)
    machine = read_machine(output_dir=output_dir, dataset_paths=datasets, overrides=overrides or {})
    return checker.check(text, machine=machine, read_config=read_config_file)
