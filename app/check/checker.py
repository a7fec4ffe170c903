"""check(): a launch command and a machine in, findings with the run's own values out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.check.hardware import GpuTable, load_gpu_table
from app.check.machine import Machine
from app.check.plan import ConfigReader, RunPlan, plan_run
from app.check.rules import SEVERITIES, Evaluator, Rule, RuleSet, Severity, load_rule_set
from app.diagnosis.command import REMOVE, command_from_script, edit_command, read_command
from app.diagnosis.frameworks import FrameworkSet, load_framework_set
from app.diagnosis.verification import verification_command
from app.errors import TrainwreckError
from app.formatting import format_value

MAX_COMMAND_CHARS = 64_000
_FIX_ROUNDS = 3
LAUNCHER_SETTINGS = ("processes_per_node", "nnodes")


class CommandError(TrainwreckError):
    """The text given is not a launch command check can read."""

    code = "invalid_command"
    status = 422


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    title: str
    parameters: list[str]  # as the run spells them
    message: str
    suggested: dict[str, Any]  # the run's spelling -> the new value (None: take the setting off)
    prevents: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The contract's check JSON."""

    command: str
    framework: str | None
    machine: dict[str, Any]
    effective_batch: dict[str, Any]
    findings: list[Finding]
    corrected_command: str | None
    verification_command: str | None
    rule_set_version: str

    @property
    def has_error(self) -> bool:
        return any(finding.severity == "error" for finding in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Values(dict[str, str]):
    """Variables as a message shows them; a name without a value reads `?`."""

    def __missing__(self, key: str) -> str:
        return "?"


def _shown(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and abs(value) >= 1:
        return str(int(value)) if value.is_integer() and abs(value) >= 10 else f"{value:.1f}"
    return format_value(value, missing="?")


@dataclass(frozen=True, slots=True)
class Checker:
    """The rules, frameworks and GPU table `check` uses; built once, shared by the CLI, the API and `run`."""

    rule_set: RuleSet
    framework_set: FrameworkSet
    gpu_table: GpuTable

    def check(self, text: str, *, machine: Machine, read_config: ConfigReader = lambda _path: None) -> CheckReport:
        command = read_command(launch_line(text))
        machine = machine.completed(self.gpu_table)
        plan = plan_run(command, frameworks=self.framework_set, machine=machine, read_config=read_config)
        findings: list[Finding] = []
        current = plan
        for _round in range(_FIX_ROUNDS):  # a fix can expose the next problem (bf16 → fp16 at a bf16 rate)
            evaluator = Evaluator(current.variables, current.given)
            seen = {finding.rule for finding in findings}
            new = [found for rule in self.rule_set.rules
                   if rule.id not in seen and (found := self._apply(rule, current, evaluator))]
            if not new:
                break
            findings += new
            edited = edit_command(command.text, _fixes(findings), launcher_flags=self._launcher_flags(plan))
            current = plan_run(read_command(edited), frameworks=self.framework_set,
                               machine=machine, read_config=read_config)
        findings.sort(key=lambda finding: SEVERITIES.index(finding.severity))  # errors first, whichever round
        changes = _fixes(findings)
        corrected = edit_command(command.text, changes, launcher_flags=self._launcher_flags(plan)) if changes else None
        suspects = {name for finding in findings for name in self._rule(finding.rule).spec.parameters}
        verification = verification_command(corrected or command.text, frameworks=self.framework_set, keep=suspects)
        variables = plan.variables
        return CheckReport(
            command=command.text,
            framework=variables["framework"],
            machine=machine.to_dict(),
            effective_batch={"per_device": plan.values.get("per_device_batch"), "gpus": variables["data_parallel"],
                             "accumulation": plan.values.get("accumulation"), "total": variables["effective_batch"]},
            findings=findings,
            corrected_command=corrected,
            verification_command=verification,
            rule_set_version=self.rule_set.version,
        )

    def paths(self, text: str) -> tuple[str | None, list[str]]:
        """The command's output folder and the dataset paths it names, where the machine's facts are read."""
        command = read_command(launch_line(text))
        plan = plan_run(command, frameworks=self.framework_set, machine=Machine())
        output_dir = plan.values.get("output_dir")
        datasets = plan.values.get("dataset")
        names = datasets if isinstance(datasets, list) else [datasets] if datasets else []
        return (str(output_dir) if output_dir else None), [str(name).split("#")[0] for name in names]

    def _launcher_flags(self, plan: RunPlan) -> set[str]:
        """How this command spells the settings its launcher (not its script) reads."""
        return {spelling for name in LAUNCHER_SETTINGS
                for spelling in self.framework_set.setting_spellings(plan.framework, name)}

    def _rule(self, rule_id: str) -> Rule:
        return next(rule for rule in self.rule_set.rules if rule.id == rule_id)

    def _apply(self, rule: Rule, plan: RunPlan, evaluator: Evaluator) -> Finding | None:
        spec = rule.spec
        if evaluator.value(spec.when) is not True:
            return None
        suggested: dict[str, Any] = {}
        for name, expression in spec.suggested.items():
            value = evaluator.value(expression) if isinstance(expression, str) else expression
            if expression is None:
                if plan.given(name):
                    suggested[plan.spelling(name)] = None
            elif value is not None and value != plan.values.get(name):
                suggested[plan.spelling(name)] = value
        shown = _Values({name: _shown(value) for name, value in plan.variables.items()})
        shown.update({f"{name}_name": plan.spelling(name) for name in spec.parameters})
        return Finding(
            rule=spec.id,
            severity=spec.severity,
            title=spec.title,
            parameters=[plan.spelling(name) for name in spec.parameters if plan.given(name)]
            or [plan.spelling(name) for name in spec.parameters],
            message=" ".join(spec.message.split()).format_map(shown),
            suggested=suggested,
            prevents=list(spec.prevents),
        )


def _fixes(findings: list[Finding]) -> dict[str, Any]:
    """Every finding's suggested values as command edits; where two set one setting, the graver one's holds."""
    changes: dict[str, Any] = {}
    for finding in sorted(findings, key=lambda finding: SEVERITIES.index(finding.severity)):
        for name, value in finding.suggested.items():
            changes.setdefault(name, REMOVE if value is None else value)
    return changes


def launch_line(text: str) -> str:
    """The one launch line of what was given: a command, or a pasted block or script holding one."""
    if len(text) > MAX_COMMAND_CHARS:
        raise CommandError(f"the command is longer than {MAX_COMMAND_CHARS} characters")
    if "\x00" in text:
        raise CommandError("the command holds a NUL byte")
    line = text.strip()
    if "\n" in line:
        line = command_from_script(line) or ""
    if not line:
        raise CommandError("no launch command given")
    return line


def load_checker(
    rule_dirs: Sequence[Path] = (), framework_dirs: Sequence[Path] = (), *, cache_dir: Path | None = None
) -> Checker:
    """The built-in rules and frameworks, and a team's folders."""
    return Checker(rule_set=load_rule_set(rule_dirs, cache_dir=cache_dir),
                   framework_set=load_framework_set(framework_dirs, cache_dir=cache_dir),
                   gpu_table=load_gpu_table())
