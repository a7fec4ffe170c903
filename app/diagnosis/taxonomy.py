"""The failure categories and stages every diagnosis uses (taxonomy.yaml beside this file)."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yaml")


@cache
def _taxonomy() -> dict[str, dict[str, Any]]:
    import yaml  # on first use: a report needs it, a `trainwreck diagnose` start does not

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: ~15 ms less than the Python one
    taxonomy: dict[str, dict[str, Any]] = yaml.load(TAXONOMY_PATH.read_text(encoding="utf-8"), Loader=loader)
    return taxonomy


def categories() -> dict[str, str]:
    """Category id → description."""
    return dict(_taxonomy()["categories"])


def stages() -> dict[str, str]:
    """Stage id → description."""
    return dict(_taxonomy()["stages"])


@dataclass(frozen=True, slots=True)
class StageWording:
    label: str  # badges and filters: "Mid-run"
    where: str  # the report's "Where:" line: "mid-run"
    sentence: str  # "The run died in the middle of training"


def stage_wording(stage: str) -> StageWording:
    """How a stage is worded for people (the stage id itself for a stage the taxonomy lacks)."""
    wording = _taxonomy()["stage_wording"].get(stage)
    return StageWording(**wording) if wording else StageWording(stage, stage, f"at stage {stage}")
