"""The run a launch command describes: its settings under their common names, and what follows from them
on a given machine (world size, effective batch, precision, memory estimates) — the variables rules read."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from app.check.estimate import (
    ModelShape,
    TrainingLayout,
    accumulation_for,
    checkpoint_gib,
    fitting_batch,
    gpu_memory,
    shape_from_config,
    shape_from_name,
)
from app.check.machine import Machine
from app.diagnosis.command import LaunchCommand
from app.diagnosis.frameworks import Framework, FrameworkSet
from app.diagnosis.settings import SETTING_NAMES, parameter_key

ConfigReader = Callable[[str], str | None]  # a file the command names -> its text, or None when unreadable
_ZERO_PRESET = re.compile(r"zero[_-]?(\d)", re.IGNORECASE)
_PEFT_TUNERS = ("lora", "qlora", "dora", "adalora", "longlora", "lora+", "ia3", "loha", "lokr", "vera", "boft",
                "adapter", "prefix", "prompt", "llamapro", "reft", "bone", "freeze")
_AUTO = ("auto", "gpu", "-1", "all")
_UNKNOWN_LENGTH = 512  # tokens per sample when the command does not say: the estimate is then a lower bound


@dataclass(slots=True)
class RunPlan:
    """Settings by common name (`values`, a framework default where not given), how the run spells each one it
    sets (`spellings`), and the variables rules are evaluated over."""

    command: LaunchCommand
    framework: Framework | None
    frameworks: FrameworkSet
    parameters: dict[str, Any]
    spellings: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)

    def given(self, name: str) -> bool:
        return name in self.spellings

    def spelling(self, name: str) -> str:
        """How to write the setting on this command: as the run spells it, else as its framework does."""
        if name in self.spellings:
            return self.spellings[name]
        spellings = self.frameworks.setting_spellings(self.framework, name)
        return spellings[0] if spellings else name


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _read_configs(command: LaunchCommand, read: ConfigReader) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings from the YAML configs the command names (and the files they name in turn), and what a
    DeepSpeed JSON says: `zero_stage`, `offload_optimizer` and its batch and precision where not `auto`."""
    settings: dict[str, Any] = {}
    deepspeed: dict[str, Any] = {}
    pending = list(command.config_files)
    seen: set[str] = set()
    while pending and len(seen) < 8:
        path = pending.pop(0)
        if path in seen:
            continue
        seen.add(path)
        text = read(path)
        if text is None:
            continue
        try:
            loaded = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError):
            continue
        if not isinstance(loaded, dict):
            continue
        if path.endswith(".json"):
            deepspeed.update(_deepspeed_facts(loaded))
            continue
        for key, value in _flatten(loaded).items():
            settings.setdefault(key, value)
            if isinstance(value, str) and value.endswith((".json", ".yaml", ".yml")):
                pending.append(value)
    return settings, deepspeed


def _deepspeed_facts(config: dict[str, Any]) -> dict[str, Any]:
    zero = config.get("zero_optimization") or {}
    facts: dict[str, Any] = {}
    if isinstance(zero, dict) and isinstance(zero.get("stage"), int):
        facts["zero_stage"] = zero["stage"]
        offload = zero.get("offload_optimizer") or {}
        facts["offload_optimizer"] = isinstance(offload, dict) and offload.get("device") in ("cpu", "nvme")
    for key, setting in (("train_micro_batch_size_per_gpu", "per_device_batch"),
                         ("gradient_accumulation_steps", "accumulation")):
        if isinstance(config.get(key), int):
            facts[setting] = config[key]
    for precision in ("bf16", "fp16"):
        section = config.get(precision)
        if isinstance(section, dict) and section.get("enabled") is True:
            facts[precision] = True
    return facts


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "none", "0", "null", "off")
    return bool(value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _precision_mode(values: Mapping[str, Any]) -> str:
    if _truthy(values.get("bf16")):
        return "bf16"
    if _truthy(values.get("fp16")):
        return "fp16"
    text = str(values.get("precision") or "").lower()
    if "bf16" in text or "bfloat16" in text:
        return "bf16"
    if text in ("fp16", "float16", "16", "16-mixed", "half", "16-true"):
        return "fp16"
    return "fp32"


def plan_run(
    command: LaunchCommand,
    *,
    frameworks: FrameworkSet,
    machine: Machine,
    read_config: ConfigReader = lambda _path: None,
) -> RunPlan:
    """Resolve what the command sets (its flags over its config files over the framework's defaults) and derive
    the quantities rules reason about."""
    framework = frameworks.for_command(command.text)
    config_settings, deepspeed = _read_configs(command, read_config)
    parameters = dict(config_settings)
    typed = {parameter_key(key) for key in command.parameters}
    parameters = {key: value for key, value in parameters.items() if parameter_key(key) not in typed}
    parameters.update(command.parameters)
    plan = RunPlan(command=command, framework=framework, frameworks=frameworks, parameters=parameters)
    for name in SETTING_NAMES:
        found = command.find(frameworks.setting_spellings(framework, name), parameters)
        if found is not None:
            plan.spellings[name], plan.values[name] = found
        elif name in deepspeed:
            plan.values[name] = deepspeed[name]
        else:
            plan.values[name] = frameworks.setting_default(framework, name)
    plan.variables = {**plan.values, **_derived(plan, machine, deepspeed, read_config)}
    return plan


def _model_shape(plan: RunPlan, read_config: ConfigReader) -> ModelShape | None:
    model = plan.values.get("model")
    if not isinstance(model, str):
        return None
    text = read_config(f"{model.rstrip('/')}/config.json")
    if text is not None:
        try:
            config = json.loads(text)
        except ValueError:
            config = None
        if isinstance(config, dict) and (shape := shape_from_config(config)) is not None:
            return shape
    return shape_from_name(model)


def _derived(
    plan: RunPlan, machine: Machine, deepspeed: Mapping[str, Any], read_config: ConfigReader
) -> dict[str, Any]:
    values = plan.values
    derived: dict[str, Any] = {
        "framework": plan.framework.id if plan.framework else None,
        "entry": plan.command.entry or plan.command.program,
        **{key: getattr(machine, key) for key in ("gpu", "gpus", "gpu_memory_gib", "compute_capability",
                                                     "host_memory_gib", "shm_gib", "disk_free_gib", "dataset_gib")},
    }
    visible = values.get("visible_devices")
    derived["visible_gpus"] = (len([part for part in str(visible).split(",") if part.strip()])
                               if visible not in (None, "") else machine.gpus)
    tuner = str(values.get("tuner") or "").lower()
    derived["lora"] = any(tuner.startswith(name) for name in _PEFT_TUNERS) or _truthy(plan.parameters.get("use_peft"))
    derived["precision_mode"] = _precision_mode(values)
    preset = values.get("deepspeed")
    if "zero_stage" in deepspeed:
        zero_stage: int | None = deepspeed["zero_stage"]
        offload = bool(deepspeed.get("offload_optimizer"))
    elif isinstance(preset, str) and (found := _ZERO_PRESET.search(preset)):
        zero_stage, offload = int(found.group(1)), "offload" in preset.lower()
    elif _truthy(preset):
        zero_stage, offload = None, False  # a DeepSpeed config that could not be read
    else:
        fsdp = str(values.get("fsdp") or "").lower()
        zero_stage = 3 if "full_shard" in fsdp else 2 if "shard_grad_op" in fsdp else 0
        offload = "offload" in fsdp
    derived["zero_stage"], derived["offload_optimizer"] = zero_stage, offload

    processes = values.get("processes_per_node")
    processes_count = _as_int(processes)
    all_visible = not plan.given("processes_per_node") and plan.command.program == "deepspeed"  # its default
    if str(processes).lower() in _AUTO or all_visible:
        processes_count = derived["visible_gpus"]
    nnodes = _as_int(values.get("nnodes")) or 1
    model_split = math.prod(_as_int(values.get(name)) or 1
                            for name in ("tensor_parallel", "pipeline_parallel", "context_parallel"))
    world = processes_count * nnodes if processes_count else None
    derived["world_size"] = world
    derived["data_parallel"] = world // model_split if world and world % model_split == 0 else None
    per_device = _as_int(values.get("per_device_batch"))
    accumulation = _as_int(values.get("accumulation")) or 1
    global_batch = _as_int(values.get("global_batch"))
    dp = derived["data_parallel"]
    if global_batch:  # frameworks that set the global batch derive the accumulation from it
        derived["effective_batch"] = global_batch
        if per_device and dp:
            values["accumulation"] = max(1, global_batch // (per_device * dp))
    else:
        derived["effective_batch"] = per_device * dp * accumulation if per_device and dp else None
    derived["reference_learning_rate"] = 1e-4 if derived["lora"] else 1e-5
    _memory(plan, derived, read_config)
    workers = _as_int(values.get("dataloader_workers")) or 0
    length = _as_int(values.get("max_length")) or _UNKNOWN_LENGTH
    derived["shm_need_gib"] = round(
        (processes_count or 1) * workers * (0.125 + 2 * (per_device or 1) * length * 64 / (1 << 30)), 2
    )
    return derived


def _memory(plan: RunPlan, derived: dict[str, Any], read_config: ConfigReader) -> None:
    """The GPU memory estimate, the batch that fits, and the checkpoint's size (None where unknowable)."""
    for name in ("model_billions", "estimated_gpu_memory_gib", "memory_parts", "fitting_per_device_batch",
                 "fitting_accumulation", "fitting_needs_checkpointing", "checkpoint_gib", "checkpoints_written"):
        derived[name] = None
    shape = _model_shape(plan, read_config)
    if shape is None:
        return
    values = plan.values
    derived["model_billions"] = shape.billions
    quant_bits = _as_int(values.get("quantization_bits"))
    weight_bytes = quant_bits / 8 if quant_bits else 4.0 if derived["precision_mode"] == "fp32" else 2.0
    with_optimizer = not _truthy(values.get("save_only_model"))
    derived["checkpoint_gib"] = checkpoint_gib(shape, lora=derived["lora"], with_optimizer=with_optimizer)
    limit = _as_int(values.get("save_total_limit"))
    max_steps, save_steps = _as_int(values.get("max_steps")), _as_int(values.get("save_steps"))
    saves = math.ceil(max_steps / save_steps) + 1 if max_steps and save_steps else None  # and the final model
    if limit is not None:
        derived["checkpoints_written"] = min(limit + 1, saves) if saves else limit + 1
    else:
        derived["checkpoints_written"] = saves
    per_device = _as_int(values.get("per_device_batch"))
    if derived["zero_stage"] is None or not per_device or derived["data_parallel"] is None:
        return
    layout = TrainingLayout(
        weight_bytes=weight_bytes, lora=derived["lora"], zero_stage=derived["zero_stage"],
        offload_optimizer=derived["offload_optimizer"], data_parallel=derived["data_parallel"],
        tensor_parallel=_as_int(values.get("tensor_parallel")) or 1,
        pipeline_parallel=_as_int(values.get("pipeline_parallel")) or 1,
        per_device_batch=per_device, max_length=_as_int(values.get("max_length")) or _UNKNOWN_LENGTH,
        checkpointing=_truthy(values.get("gradient_checkpointing")),
    )
    estimate = gpu_memory(shape, layout)
    derived["estimated_gpu_memory_gib"] = round(estimate.total, 1)
    derived["memory_parts"] = estimate.parts()
    card = derived["gpu_memory_gib"]
    if card:
        fitting = fitting_batch(shape, layout, card)
        if fitting is not None:
            batch, needs_checkpointing = fitting
            derived["fitting_per_device_batch"] = batch
            derived["fitting_needs_checkpointing"] = needs_checkpointing and not layout.checkpointing
            if derived["effective_batch"]:
                derived["fitting_accumulation"] = accumulation_for(
                    derived["effective_batch"], per_device_batch=batch, data_parallel=derived["data_parallel"])
