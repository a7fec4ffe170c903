"""The Diagnoser as the settings configure it: the one place the CLI, the service and admin tasks build it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.check.checker import Checker, load_checker
from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.diagnosis.frameworks import load_framework_set
from app.diagnosis.signatures import load_signature_set


def build_diagnoser(
    settings: Settings, extra_signature_dirs: Sequence[Path] = (), extra_framework_dirs: Sequence[Path] = ()
) -> Diagnoser:
    """Built-in signatures and frameworks plus the team's folders, the decompression bound, the pattern cache."""
    signature_set = load_signature_set([*settings.signature_dirs, *extra_signature_dirs])
    frameworks = load_framework_set([*settings.framework_dirs, *extra_framework_dirs])
    return Diagnoser(
        signature_set,
        frameworks=frameworks,
        max_decompressed_bytes=settings.max_decompressed_bytes,
        cache_dir=settings.cache_dir.expanduser() if settings.cache_dir else None,
    )


def build_checker(
    settings: Settings, extra_rule_dirs: Sequence[Path] = (), extra_framework_dirs: Sequence[Path] = ()
) -> Checker:
    """Built-in preflight rules and frameworks plus the team's folders."""
    return load_checker([*settings.rule_dirs, *extra_rule_dirs],
                              [*settings.framework_dirs, *extra_framework_dirs])
