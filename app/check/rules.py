"""Rule files (`rules/`): the schema of one preflight rule, loading, validation, and the expressions they use.

A rule's `when` is an expression over the run's settings (by their common names), the machine's facts and
the quantities the checker derives (see rules/README.md); `suggested` values are expressions too. Expressions
are evaluated by simpleeval: no attribute access, no imports, only the names and functions listed here.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from simpleeval import EvalWithCompoundTypes

from app.diagnosis.knowledge import ID_PATTERN, load_folders, read_spec
from app.diagnosis.settings import SETTING_NAMES
from app.diagnosis.taxonomy import categories
from app.errors import SignatureError
from app.resources import bundled
from app.validation import InvalidField

BUILTIN_RULE_DIR = bundled("rules")
Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

# What the checker derives, beside the settings (SETTING_NAMES) themselves.
DERIVED_NAMES: dict[str, str] = {
    "framework": "the framework the command is for (a framework file's id)",
    "entry": "the entry point: `swift sft`, `megatron sft`, `llamafactory-cli train`, a script",
    "precision_mode": "`bf16`, `fp16` or `fp32`, from the precision flags and dtype strings",
    "lora": "a parameter-efficient method (LoRA, QLoRA, ...) rather than full training",
    "zero_stage": "the DeepSpeed ZeRO stage (0 without DeepSpeed)",
    "offload_optimizer": "the optimizer state lives on the CPU (ZeRO offload)",
    "world_size": "training processes over all nodes",
    "data_parallel": "data-parallel ranks: world size over tensor × pipeline × context parallel",
    "effective_batch": "samples per optimizer step over all GPUs",
    "model_billions": "the model's size in billions of parameters (from its name or config)",
    "estimated_gpu_memory_gib": "the estimated peak memory of one GPU",
    "memory_parts": "the estimate's parts, as text",
    "fitting_per_device_batch": "the largest per-device batch that fits the card (None: not even one)",
    "fitting_accumulation": "the accumulation that keeps the effective batch with that batch",
    "fitting_needs_checkpointing": "the fitting batch needs gradient checkpointing on",
    "checkpoint_gib": "one checkpoint's estimated size on disk",
    "checkpoints_written": "checkpoints the disk must hold at once (the limit kept, or all the run writes)",
    "shm_need_gib": "shared memory the DataLoader workers of one node need, roughly",
    "reference_learning_rate": "the field's bf16 learning rate for this method (LoRA 1e-4, full 1e-5)",
    "gpu": "the GPU's name", "gpus": "GPUs on the machine",
    "visible_gpus": "GPUs a process may use (CUDA_VISIBLE_DEVICES, else the machine's)",
    "gpu_memory_gib": "one GPU's memory", "compute_capability": "the GPU's compute capability",
    "host_memory_gib": "the host's memory", "shm_gib": "the size of /dev/shm",
    "disk_free_gib": "free disk at output_dir", "dataset_gib": "the local dataset files' size",
}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "round": round, "ceil": math.ceil, "floor": math.floor, "str": str, "int": int,
    "bool": bool, "float": float,
}
GIVEN_FUNCTION = "given"  # given('warmup_ratio'): the command (or its config) sets it, not a default
VARIABLES = frozenset(SETTING_NAMES) | frozenset(DERIVED_NAMES)


class Sample(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A command with the machine it runs on (flags of `check`) and the config files it names."""

    command: str
    machine: dict[str, Any] = {}
    configs: dict[str, str] = {}


class RuleSamples(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    flag: Annotated[list[Sample | str], msgspec.Meta(min_length=1)]  # commands the rule must flag
    not_flag: Annotated[list[Sample | str], msgspec.Meta(min_length=1)]  # near misses it must not

    @staticmethod
    def as_sample(item: Sample | str) -> Sample:
        return item if isinstance(item, Sample) else Sample(command=item)


class RuleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The schema of one rule file."""

    id: Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
    title: Annotated[str, msgspec.Meta(min_length=1)]
    severity: Severity
    parameters: Annotated[list[str], msgspec.Meta(min_length=1)]  # the settings it concerns, by their common names
    when: str  # an expression; the rule fires when it is true (and every fact it reads is known)
    message: Annotated[str, msgspec.Meta(min_length=1)]  # the why in a sentence or two; {name} inserts a value
    suggested: dict[str, str | int | float | bool | None] = {}  # null: remove the setting
    prevents: list[str] = []  # the categories of the crashes it foresees
    samples: RuleSamples

    def validate(self) -> None:
        unknown = [name for name in self.parameters if name not in SETTING_NAMES]
        if unknown:
            raise InvalidField("parameters", f"unknown setting {unknown[0]!r}")
        _expression_field("when", self.when)
        unknown = [name for name in self.prevents if name not in categories()]
        if unknown:
            raise InvalidField("prevents", f"unknown category {unknown[0]!r}")
        for name, value in self.suggested.items():
            if name not in SETTING_NAMES:
                raise InvalidField("suggested", f"unknown setting {name!r}")
            if isinstance(value, str):
                _expression_field("suggested", value)


def _expression_field(field: str, text: str) -> None:
    try:
        check_expression(text)
    except ValueError as error:
        raise InvalidField(field, str(error)) from None


def check_expression(text: str) -> None:
    """Raise ValueError unless the expression parses and names only known variables and functions."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"invalid expression {text!r}: {error.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            raise ValueError(f"{text!r}: attribute access is not allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in {*FUNCTIONS, GIVEN_FUNCTION}:
                raise ValueError(f"{text!r}: only the functions {sorted({*FUNCTIONS, GIVEN_FUNCTION})} may be called")
            if node.func.id == GIVEN_FUNCTION and not (
                len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and node.args[0].value in SETTING_NAMES
            ):
                raise ValueError(f"{text!r}: given() takes one setting name in quotes")
        elif isinstance(node, ast.Name) and node.id not in VARIABLES | {*FUNCTIONS, GIVEN_FUNCTION}:
            raise ValueError(f"{text!r}: unknown name {node.id!r}")


@dataclass(frozen=True, slots=True)
class Rule:
    spec: RuleSpec
    path: Path

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str


class Evaluator:
    """Evaluates rule expressions over one run's variables."""

    def __init__(self, variables: Mapping[str, Any], given: Callable[[str], bool]) -> None:
        self._eval = EvalWithCompoundTypes(names=dict(variables), functions={**FUNCTIONS, GIVEN_FUNCTION: given})

    def value(self, expression: str) -> Any:
        """The expression's value; None when a fact it needs is unknown (a comparison with None, say)."""
        try:
            return self._eval.eval(expression)
        except (TypeError, ZeroDivisionError, ValueError, OverflowError):
            return None


def _load_file(path: Path) -> Rule:
    spec = read_spec(path, RuleSpec, kind="rule")
    if spec.id != path.stem:
        raise SignatureError(f"{path}: field 'id': {spec.id!r} must equal the file name {path.stem!r}")
    return Rule(spec=spec, path=path)


def load_rule_set(
    extra_dirs: Sequence[Path] = (), *, builtin_dir: Path | None = BUILTIN_RULE_DIR, cache_dir: Path | None = None
) -> RuleSet:
    """The built-in rules and a team's folders; ids unique across all."""
    directories = ([builtin_dir] if builtin_dir is not None else []) + list(extra_dirs)
    loaded, version = load_folders(directories, _load_file, kind="rule", cache_dir=cache_dir)
    return RuleSet(rules=tuple(loaded), version=version)
