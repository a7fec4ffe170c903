"""Settings as launch commands and logs print them: one key for all spellings, values as Python."""

from __future__ import annotations

from typing import Any


def parameter_key(name: str) -> str:
    """One key for all spellings of a setting: `--micro-batch-size`, `micro_batch_size`, `Micro_Batch_Size`."""
    return name.lower().replace("-", "_")


def parse_value(raw: str) -> Any:
    """A printed parameter value as Python: int, float, bool, None or the string itself."""
    text = raw.strip().strip(",")
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        inner = parse_value(text[1:-1])
        return inner if isinstance(inner, int | float) else text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


# The settings launch checks reason about, under one name each; every framework file maps them to its own
# spellings (`settings:`), and rules and verification commands name them so.
SETTING_NAMES: dict[str, str] = {
    "per_device_batch": "samples per GPU per optimizer micro-step",
    "accumulation": "micro-steps per optimizer step",
    "global_batch": "samples per optimizer step over all GPUs (frameworks that set it directly)",
    "learning_rate": "the peak learning rate",
    "max_length": "tokens per sample",
    "max_samples": "a cap on the samples read from the dataset",
    "dataloader_workers": "DataLoader worker processes per rank",
    "warmup_ratio": "the share of steps spent warming up",
    "warmup_steps": "steps spent warming up",
    "fp16": "fp16 mixed precision on",
    "bf16": "bf16 mixed precision on",
    "precision": "a precision or dtype named as a string (`bf16-mixed`, `bfloat16`, `fp16`)",
    "deepspeed": "a DeepSpeed config (a file or a preset like `zero2`)",
    "device_map": "model placement across GPUs by accelerate (`auto`)",
    "fsdp": "FSDP sharding",
    "tensor_parallel": "tensor-parallel degree",
    "pipeline_parallel": "pipeline-parallel degree",
    "context_parallel": "context-parallel degree",
    "gradient_checkpointing": "activation recomputation",
    "tuner": "the tuning method (`lora`, `full`, ...)",
    "quantization_bits": "bits of the quantized base model (QLoRA)",
    "model": "the model id or path",
    "dataset": "the dataset id(s) or path(s)",
    "streaming": "the dataset read as a stream",
    "save_total_limit": "checkpoints kept",
    "save_steps": "steps between checkpoints",
    "save_only_model": "checkpoints without optimizer state",
    "max_steps": "the run's length in optimizer steps",
    "epochs": "the run's length in epochs",
    "output_dir": "where checkpoints are written",
    "load_safetensors": "Megatron-SWIFT reads Hugging Face safetensors weights",
    "load": "a Megatron checkpoint to load",
    "processes_per_node": "training processes per node",
    "nnodes": "nodes",
    "visible_devices": "the GPUs a process may see (`CUDA_VISIBLE_DEVICES`)",
}
