"""Scoring the engine on a labelled corpus (labels.jsonl beside the logs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.check.checker import Checker
from app.check.machine import Machine
from app.diagnosis.engine import Diagnoser
from app.errors import TrainwreckError


@dataclass(slots=True)
class CaseResult:
    case_id: str
    expected: dict[str, Any]
    got: dict[str, Any]
    category_ok: bool
    stage_ok: bool
    step_ok: bool | None  # None when the label has no step
    remedy_hit: bool | None  # None when the label names no remedy parameters
    foreseen: bool | None = None  # a check finding on the log's command named the category (None: not checked)
    other_errors: list[str] = field(default_factory=list)  # check errors that foresee other categories


@dataclass(slots=True)
class EvaluationReport:
    cases: list[CaseResult] = field(default_factory=list)

    def _share(self, values: list[bool | None]) -> tuple[int, int]:
        counted = [value for value in values if value is not None]
        return sum(counted), len(counted)

    def figures(self) -> dict[str, tuple[int, int]]:
        """(correct, counted) for category, stage, step and remedies."""
        return {
            "category": self._share([case.category_ok for case in self.cases]),
            "stage": self._share([case.stage_ok for case in self.cases]),
            "step": self._share([case.step_ok for case in self.cases]),
            "remedy": self._share([case.remedy_hit for case in self.cases]),
        }

    def render(self) -> str:
        """The scorer's printout: figures, then every miss."""
        lines = []
        for name, (correct, counted) in self.figures().items():
            share = correct / counted if counted else 0.0
            lines.append(f"{name:<9} {share:6.1%}  ({correct}/{counted})")
        checked = [case for case in self.cases if case.foreseen is not None]
        if checked:
            foreseen = [case for case in checked if case.foreseen]
            share = len(foreseen) / len(checked)
            lines.append(f"check     {share:6.1%}  ({len(foreseen)}/{len(checked)} logs that show their command: "
                         "a finding foresaw what killed the run)")
            for case in foreseen:
                lines.append(f"  foreseen {case.case_id}: {case.expected['category']}")
            for case in checked:
                if case.other_errors:
                    lines.append(f"  other errors {case.case_id} ({case.expected['category']}): "
                                 + ", ".join(case.other_errors))
        misses = [case for case in self.cases if not (case.category_ok and case.stage_ok and case.step_ok is not False
                                                        and case.remedy_hit is not False)]
        if misses:
            lines.append("")
            lines.append(f"misses ({len(misses)}):")
        for case in misses:
            wrong = []
            if not case.category_ok:
                wrong.append(f"category {case.got['category']} (want {case.expected['category']})")
            if not case.stage_ok:
                wrong.append(f"stage {case.got['stage']} (want {case.expected['stage']})")
            if case.step_ok is False:
                wrong.append(f"step {case.got['step']} (want {case.expected['step']})")
            if case.remedy_hit is False:
                got = [remedy["parameter"] for remedy in case.got["remedies"]]
                wrong.append(f"remedies {got} (want one of {case.expected['remedy_params']})")
            lines.append(f"  {case.case_id}: " + "; ".join(wrong) + f"  [signature {case.got['signature']}]")
        return "\n".join(lines) + "\n"


def step_matches(expected: int | None, got: int | None) -> bool | None:
    """Within the logging interval: ±10 steps or ±5%."""
    if expected is None:
        return None
    if got is None:
        return False
    return abs(expected - got) <= max(10, 0.05 * expected)


def _normalise(name: str) -> str:
    return name.lower().lstrip("-").replace("-", "_")


def _foresight(checker: Checker, diagnosis: dict[str, Any], category: str) -> tuple[bool | None, list[str]]:
    """Whether checking the command the log shows, on the GPU it names, would have flagged the category."""
    run = diagnosis["run"]
    if not run.get("command"):
        return None, []
    machine = Machine(gpu=run.get("gpu"), gpu_memory_gib=run.get("gpu_memory_gib"))
    try:
        report = checker.check(run["command"], machine=machine)
    except TrainwreckError:
        return None, []
    foreseen = any(category in finding.prevents for finding in report.findings)
    others = [finding.rule for finding in report.findings
              if finding.severity == "error" and category not in finding.prevents]
    return foreseen, others


def evaluate(
    corpus_dir: Path, diagnoser: Diagnoser, *, split: str | None = None, checker: Checker | None = None
) -> EvaluationReport:
    """Diagnose every labelled log of a corpus (or of one split of it) and compare with its labels; with a
    checker, also check the launch command each log shows, as `trainwreck check` would have before the run."""
    labels_path = corpus_dir / "labels.jsonl"
    try:
        labels = [json.loads(line) for line in labels_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        raise TrainwreckError(f"cannot read {labels_path}: {error}") from None
    report = EvaluationReport()
    for label in labels:
        if split is not None and label.get("split") != split:
            continue
        diagnosis = diagnoser.diagnose(corpus_dir / label["file"], exit_code=label.get("exit_code")).to_dict()
        wanted_remedies = {_normalise(name) for name in label.get("remedy_params") or []}
        got_remedies = {_normalise(remedy["parameter"]) for remedy in diagnosis["remedies"]}
        foreseen, other_errors = _foresight(checker, diagnosis, label["category"]) if checker else (None, [])
        report.cases.append(
            CaseResult(
                case_id=label.get("id", label["file"]),
                expected=label,
                got=diagnosis,
                category_ok=diagnosis["category"] == label["category"],
                stage_ok=diagnosis["stage"] == label["stage"],
                step_ok=step_matches(label.get("step"), diagnosis["step"]),
                remedy_hit=bool(wanted_remedies & got_remedies) if wanted_remedies else None,
                foreseen=foreseen,
                other_errors=other_errors,
            )
        )
    return report
