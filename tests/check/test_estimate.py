"""The first-order estimates: model size from a name or config, memory per GPU, checkpoint size."""

from __future__ import annotations

import pytest

from app.check.estimate import (
    TrainingLayout,
    checkpoint_gib,
    fitting_batch,
    gpu_memory,
    shape_from_config,
    shape_from_name,
)

QWEN_7B_CONFIG = {"hidden_size": 3584, "num_hidden_layers": 28, "intermediate_size": 18944, "vocab_size": 152064,
                  "num_attention_heads": 28, "num_key_value_heads": 4, "tie_word_embeddings": False}


@pytest.mark.parametrize(
    ("name", "billions"),
    [("Qwen/Qwen2.5-7B-Instruct", 7), ("meta-llama/Llama-2-70b-hf", 70), ("Qwen/Qwen3-30B-A3B", 30),
     ("Qwen/Qwen2.5-0.5B", 0.5), ("facebook/opt-350m", 0.35), ("/models/my-model", None)],
)
def test_size_from_the_name(name: str, billions: float | None) -> None:
    shape = shape_from_name(name)
    assert (shape.billions if shape else None) == billions


def test_size_from_a_config_is_close_to_the_published_one() -> None:
    shape = shape_from_config(QWEN_7B_CONFIG)
    assert shape is not None and 7.0 < shape.billions < 8.0  # Qwen2.5-7B has 7.6B parameters


def _layout(**changes: object) -> TrainingLayout:
    fields: dict[str, object] = {"weight_bytes": 2.0, "lora": False, "zero_stage": 0, "offload_optimizer": False,
                                 "data_parallel": 8, "tensor_parallel": 1, "pipeline_parallel": 1,
                                 "per_device_batch": 1, "max_length": 2048, "checkpointing": True} | changes
    return TrainingLayout(**fields)  # type: ignore[arg-type]


def test_full_training_needs_sixteen_bytes_a_parameter_without_sharding() -> None:
    shape = shape_from_config(QWEN_7B_CONFIG)
    assert shape is not None
    estimate = gpu_memory(shape, _layout())
    assert estimate.weights + estimate.gradients + estimate.optimizer == pytest.approx(shape.parameters * 16 / 2**30)


def test_sharding_lora_and_checkpointing_each_lower_the_estimate() -> None:
    shape = shape_from_config(QWEN_7B_CONFIG)
    assert shape is not None
    plain = gpu_memory(shape, _layout(checkpointing=False)).total
    assert gpu_memory(shape, _layout(checkpointing=False, zero_stage=2)).total < plain
    assert gpu_memory(shape, _layout(checkpointing=False, zero_stage=3)).total < \
        gpu_memory(shape, _layout(checkpointing=False, zero_stage=2)).total
    assert gpu_memory(shape, _layout(checkpointing=False, lora=True)).total < plain
    assert gpu_memory(shape, _layout()).total < plain
    assert gpu_memory(shape, _layout(per_device_batch=8)).total > gpu_memory(shape, _layout()).total


def test_the_fitting_batch_is_the_largest_that_fits() -> None:
    shape = shape_from_config(QWEN_7B_CONFIG)
    assert shape is not None
    layout = _layout(lora=True, per_device_batch=64, max_length=4096, checkpointing=False)
    batch, needs_checkpointing = fitting_batch(shape, layout, 80) or (0, False)
    assert 1 <= batch < 64
    assert gpu_memory(shape, _layout(lora=True, per_device_batch=batch, max_length=4096,
                                     checkpointing=needs_checkpointing)).total <= 80 * 0.92
    assert fitting_batch(shape, _layout(data_parallel=1, zero_stage=0), 24) is None  # full 7B on one 24 GB card


def test_checkpoint_size() -> None:
    shape = shape_from_name("Qwen/Qwen2.5-7B")
    assert shape is not None
    assert checkpoint_gib(shape, lora=False, with_optimizer=True) == pytest.approx(7e9 * 14 / 2**30, rel=0.01)
    assert checkpoint_gib(shape, lora=False, with_optimizer=False) < 14
    assert checkpoint_gib(shape, lora=True, with_optimizer=True) < 1
