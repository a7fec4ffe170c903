"""Docs that cannot drift from the code: every setting is in docs/settings.md and read only by app/config.py."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings, setting_descriptions, settings_reference

ROOT = Path(__file__).resolve().parents[1]


def test_settings_reference_is_current() -> None:
    assert (ROOT / "docs" / "settings.md").read_text(encoding="utf-8") == settings_reference(), (
        "docs/settings.md is stale: run `python -m app.config > docs/settings.md`"
    )


def test_every_setting_has_a_description() -> None:
    descriptions = setting_descriptions()
    assert set(descriptions) == set(Settings.__struct_fields__)
    for name, description in descriptions.items():
        assert description, name


def test_only_config_reads_the_environment() -> None:
    """Passing the whole environment on to a child process is fine; reading a variable is not."""
    readers = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "app").rglob("*.py")
        if re.search(r"os\.environ\[|os\.environ\.get|getenv\(", path.read_text(encoding="utf-8"))
    ]
    assert readers == []
