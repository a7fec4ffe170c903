"""Whole logs modelled on real crashes; each states its expected diagnosis in its first line.

The header pins the category and stage, and (as pytorch/test-infra's log classifier does) the winning
signature, the line it matched, and the first remedy, so a change that moves any of them shows here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.diagnosis.engine import Diagnoser
from app.evaluation import step_matches

LOG_DIR = Path(__file__).with_name("logs")
_HEADER = re.compile(r"^# trainwreck-expect:(?P<fields>(?:\s+\w+=\S+)+)\s*$")


def _expectation(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8", errors="replace") as log:
        first = log.readline()
    header = _HEADER.match(first)
    assert header, f"{path.name}: the first line must be '# trainwreck-expect: category=... stage=...'"
    return dict(field.split("=", 1) for field in header.group("fields").split())


@pytest.mark.parametrize("path", sorted(LOG_DIR.glob("*.log")), ids=lambda path: path.stem)
def test_fixture_log_is_diagnosed_as_stated(path: Path, diagnoser: Diagnoser) -> None:
    expected = _expectation(path)
    exit_code = int(expected["exit_code"]) if "exit_code" in expected else None
    log_without_header = path.read_bytes().split(b"\n", 1)[1]  # the header states a step: it is not log text
    diagnosis = diagnoser.diagnose(log_without_header, exit_code=exit_code)
    assert diagnosis.category == expected["category"], diagnosis.evidence
    assert diagnosis.stage == expected["stage"]
    if "signature" in expected:
        assert diagnosis.signature == expected["signature"]
    if "step" in expected:
        assert step_matches(int(expected["step"]), diagnosis.step), f"step {diagnosis.step}"
    if "line" in expected:  # the root cause's line, numbered in the log without its header
        assert min(item.line for item in diagnosis.evidence) == int(expected["line"])
    if "remedy" in expected:
        assert diagnosis.remedies and diagnosis.remedies[0].parameter == expected["remedy"]
    for item in diagnosis.evidence:
        assert item.line >= 1
