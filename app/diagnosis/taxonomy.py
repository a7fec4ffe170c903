"""The failure categories and stages every diagnosis uses (taxonomy.yaml beside this file)."""

from functools import cache
from pathlib import Path

import yaml

TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yaml")


@cache
def _taxonomy() -> dict[str, dict[str, str]]:
    return yaml.safe_load(TAXONOMY_PATH.read_text(encoding="utf-8"))


def categories() -> dict[str, str]:
    """Category id → description."""
    return dict(_taxonomy()["categories"])


def stages() -> dict[str, str]:
    """Stage id → description."""
    return dict(_taxonomy()["stages"])
