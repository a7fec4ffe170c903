"""First-order estimates: a model's size from its name or config, GPU memory per rank, checkpoint size.

Deliberately simple, and conservative where the field's rules of thumb are: 16 bytes per trained parameter
with Adam in mixed precision (2 weights, 2 gradients, 12 optimizer state), about 34 bytes of activations per
token per hidden unit per layer without recomputation (2 with it, plus one layer recomputed), and the logits.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

_GIB = 1 << 30
_SIZE_IN_NAME = re.compile(r"(?<![\dA-Za-z.])(\d+(?:\.\d+)?)\s*([BbMm])(?![A-Za-z])")
_ACTIVATION_BYTES = 34  # per token per hidden unit per layer, bf16, flash attention (no s² term)
_LOGIT_BYTES = 6  # per token per vocabulary entry: the bf16 logits and their fp32 loss copy
_DEFAULT_VOCAB = 128_000
_LORA_SHARE = 0.005  # LoRA's trainable parameters, as a share of the model's
_OVERHEAD_GIB = 1.5  # CUDA context, NCCL buffers, allocator slack


@dataclass(frozen=True, slots=True)
class ModelShape:
    parameters: float
    hidden: float  # width; estimated from the size when no config says it
    layers: float
    vocab: int

    @property
    def billions(self) -> float:
        return round(self.parameters / 1e9, 2)


def shape_from_name(name: str | None) -> ModelShape | None:
    """`Qwen2.5-7B-Instruct` is 7e9 parameters (`Qwen3-30B-A3B`: the 30B total, which the weights take)."""
    if not name:
        return None
    sizes = [float(number) * (1e9 if unit in "Bb" else 1e6) for number, unit in _SIZE_IN_NAME.findall(name)]
    if not sizes:
        return None
    parameters = max(sizes)
    hidden = (128 * parameters / 12) ** (1 / 3)  # width ≈ 128 × depth is typical; 12·L·h² parameters
    return ModelShape(parameters=parameters, hidden=hidden, layers=parameters / (12 * hidden**2), vocab=_DEFAULT_VOCAB)


def shape_from_config(config: dict[str, Any]) -> ModelShape | None:
    """The shape a Hugging Face `config.json` states (its text config for multimodal models)."""
    config = config.get("text_config") or config.get("llm_config") or config
    try:
        hidden = int(config["hidden_size"])
        layers = int(config["num_hidden_layers"])
    except (KeyError, TypeError, ValueError):
        return None
    vocab = int(config.get("vocab_size") or _DEFAULT_VOCAB)
    intermediate = int(config.get("intermediate_size") or 4 * hidden)
    heads = int(config.get("num_attention_heads") or 1)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // max(heads, 1))
    experts = int(config.get("num_experts") or config.get("n_routed_experts") or config.get("num_local_experts") or 1)
    expert_intermediate = int(config.get("moe_intermediate_size") or intermediate)
    attention = hidden * head_dim * (heads * 2 + kv_heads * 2)
    mlp = 3 * hidden * (expert_intermediate * experts if experts > 1 else intermediate)
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return ModelShape(parameters=float(layers * (attention + mlp) + embeddings), hidden=hidden, layers=layers,
                      vocab=vocab)


@dataclass(frozen=True, slots=True)
class TrainingLayout:
    """How a run holds a model: precision, method, sharding, batch."""

    weight_bytes: float  # per parameter: 2 (bf16/fp16), 4 (fp32), 0.5 (4-bit base)
    lora: bool
    zero_stage: int  # 0 when no DeepSpeed ZeRO (FSDP full sharding counts as 3)
    offload_optimizer: bool
    data_parallel: int
    tensor_parallel: int
    pipeline_parallel: int
    per_device_batch: int
    max_length: int
    checkpointing: bool


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    weights: float
    gradients: float
    optimizer: float
    activations: float
    total: float

    def parts(self) -> str:
        return (f"weights {self.weights:.1f}, gradients {self.gradients:.1f}, optimizer {self.optimizer:.1f}, "
                f"activations {self.activations:.1f} GiB")


def gpu_memory(shape: ModelShape, layout: TrainingLayout) -> MemoryEstimate:
    """GiB per GPU for one training step."""
    model_split = layout.tensor_parallel * layout.pipeline_parallel
    parameters = shape.parameters / model_split
    dp = max(layout.data_parallel, 1)
    weights = parameters * layout.weight_bytes / (dp if layout.zero_stage >= 3 else 1)
    trained = parameters * (_LORA_SHARE if layout.lora else 1.0)
    gradients = trained * 2 / (dp if layout.zero_stage >= 2 else 1)
    optimizer = 0.0 if layout.offload_optimizer else trained * 12 / (dp if layout.zero_stage >= 1 else 1)
    tokens = layout.per_device_batch * layout.max_length
    layers = shape.layers / layout.pipeline_parallel
    per_layer = _ACTIVATION_BYTES * shape.hidden * tokens / layout.tensor_parallel
    # with recomputation only each layer's input stays, and one layer at a time is rebuilt in full
    activations = 2 * shape.hidden * tokens * layers + per_layer if layout.checkpointing else per_layer * layers
    activations += _LOGIT_BYTES * tokens * shape.vocab / layout.tensor_parallel
    weights, gradients, optimizer, activations = (part / _GIB for part in (weights, gradients, optimizer, activations))
    return MemoryEstimate(weights=weights, gradients=gradients, optimizer=optimizer, activations=activations,
                          total=(weights + gradients + optimizer + activations) * 1.05 + _OVERHEAD_GIB)


def fitting_batch(shape: ModelShape, layout: TrainingLayout, card_gib: float) -> tuple[int, bool] | None:
    """The largest per-device batch (at most the current one) that fits in 92 % of the card, and whether it
    needs gradient checkpointing turned on; None when not even one sample fits."""
    usable = card_gib * 0.92
    for checkpointing in sorted({layout.checkpointing, True}):
        batch = layout.per_device_batch
        while batch >= 1:
            trial = replace(layout, per_device_batch=batch, checkpointing=checkpointing)
            if gpu_memory(shape, trial).total <= usable:
                return batch, checkpointing
            batch = batch // 2 if batch > 1 else 0
    return None


def checkpoint_gib(shape: ModelShape, *, lora: bool, with_optimizer: bool) -> float:
    """One checkpoint on disk: bf16 weights of what is trained, and the fp32 optimizer state unless left out."""
    trained = shape.parameters * (_LORA_SHARE if lora else 1.0)
    return round(trained * (2 + (12 if with_optimizer else 0)) / _GIB, 1)


def accumulation_for(total: int, *, per_device_batch: int, data_parallel: int) -> int:
    """The accumulation that keeps the effective batch at `total` with a new per-device batch."""
    return max(1, math.ceil(total / (per_device_batch * max(data_parallel, 1))))
