"""The failure categories and stages every diagnosis uses (taxonomy.yaml beside this file)."""

from pathlib import Path
from typing import Any, cast

import msgspec

from app.diagnosis.knowledge import cached_value, parse_yaml

TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yaml")


_loaded: dict[str, dict[str, Any]] = {}


def load_taxonomy(cache_dir: Path | None = None) -> None:
    """Read the taxonomy now, from the cache folder when it was parsed before: importing a YAML parser is
    ~20 ms of a fresh `trainwreck diagnose`. Otherwise it is read on first use."""
    content = TAXONOMY_PATH.read_bytes()
    _loaded.update(cached_value(cache_dir, "taxonomy", content, lambda: cast(dict[str, Any], parse_yaml(content))))


def _taxonomy() -> dict[str, dict[str, Any]]:
    if not _loaded:
        load_taxonomy()
    return _loaded


def categories() -> dict[str, str]:
    """Category id → description."""
    return dict(_taxonomy()["categories"])


def stages() -> dict[str, str]:
    """Stage id → description."""
    return dict(_taxonomy()["stages"])


class StageWording(msgspec.Struct, frozen=True):
    label: str  # badges and filters: "Mid-run"
    where: str  # the report's "Where:" line: "mid-run"
    sentence: str  # "The run died in the middle of training"


def stage_wording(stage: str) -> StageWording:
    """How a stage is worded for people (the stage id itself for a stage the taxonomy lacks)."""
    wording = _taxonomy()["stage_wording"].get(stage)
    return StageWording(**wording) if wording else StageWording(stage, stage, f"at stage {stage}")
