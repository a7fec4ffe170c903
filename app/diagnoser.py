"""The Diagnoser as the settings configure it: the one place the CLI, the service and admin tasks build it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.diagnosis.frameworks import load_framework_set
from app.diagnosis.redact import default_redactor
from app.diagnosis.signatures import load_signature_set
from app.diagnosis.taxonomy import load_taxonomy

if TYPE_CHECKING:  # the checker is imported when one is built: `diagnose` needs none
    from app.check.checker import Checker


def build_diagnoser(
    settings: Settings, extra_signature_dirs: Sequence[Path] = (), extra_framework_dirs: Sequence[Path] = ()
) -> Diagnoser:
    """Built-in signatures and frameworks plus the team's folders, the decompression bound, the pattern cache."""
    cache_dir = _cache_dir(settings)
    default_redactor(cache_dir)
    load_taxonomy(cache_dir)
    signature_set = load_signature_set([*settings.signature_dirs, *extra_signature_dirs], cache_dir=cache_dir)
    frameworks = load_framework_set([*settings.framework_dirs, *extra_framework_dirs], cache_dir=cache_dir)
    return Diagnoser(
        signature_set,
        frameworks=frameworks,
        max_decompressed_bytes=settings.max_decompressed_bytes,
        cache_dir=cache_dir,
    )


def build_checker(
    settings: Settings, extra_rule_dirs: Sequence[Path] = (), extra_framework_dirs: Sequence[Path] = ()
) -> Checker:
    """Built-in preflight rules and frameworks plus the team's folders."""
    from app.check.checker import load_checker

    return load_checker([*settings.rule_dirs, *extra_rule_dirs], [*settings.framework_dirs, *extra_framework_dirs],
                        cache_dir=_cache_dir(settings))


def _cache_dir(settings: Settings) -> Path | None:
    return settings.cache_dir.expanduser() if settings.cache_dir else None
