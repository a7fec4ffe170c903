"""check() on the commands each framework's users type: the findings each must and must not give, the
corrected and verification commands, the effective batch, and the safe templates that must pass clean."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from app.check.checker import Checker, CommandError
from app.diagnosis.command import read_command
from tests.check.machines import machine

DEEPSPEED_ZERO3 = (
    '{"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": "auto", "bf16": {"enabled": "auto"}}'
)
LLAMA_FACTORY_CONFIG = """\
model_name_or_path: Qwen/Qwen2.5-7B-Instruct
stage: sft
finetuning_type: lora
dataset: alpaca_en_demo
cutoff_len: 2048
per_device_train_batch_size: 2
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
fp16: true
warmup_ratio: 0.01
dataloader_num_workers: 16
deepspeed: examples/deepspeed/ds_z3_config.json
output_dir: saves/qwen-lora
"""
ACCELERATE_CONFIG = (
    "compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_processes: 8\nmixed_precision: bf16\n"
)


@dataclass
class Case:
    command: str
    framework: str
    must: set[str]
    must_not: set[str] = field(default_factory=set)
    machine: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    corrected_has: tuple[str, ...] = ()
    corrected_lacks: tuple[str, ...] = ()


CASES = {
    "ms-swift": Case(
        "NPROC_PER_NODE=8 swift sft --model Qwen/Qwen2.5-7B-Instruct --deepspeed zero3 --device_map auto "
        "--dataset alpaca --per_device_train_batch_size 1 --gradient_accumulation_steps 16",
        "ms-swift", must={"deepspeed-with-device-map"}, must_not={"processes-above-visible-gpus"},
        corrected_lacks=("--device_map",),
    ),
    "megatron": Case(
        "NPROC_PER_NODE=6 megatron sft --model Qwen/Qwen2.5-7B-Instruct --tensor_model_parallel_size 4 "
        "--micro_batch_size 1 --global_batch_size 16 --dataset alpaca",
        "megatron-swift", must={"model-parallel-not-dividing-gpus", "megatron-safetensors-not-loaded"},
        corrected_has=("--load_safetensors true",),
    ),
    "torchrun-hf": Case(
        "torchrun --nproc_per_node 8 train.py --model_name_or_path meta-llama/Llama-2-7b-hf --fp16 "
        "--learning_rate 2e-5 --warmup_ratio 0.01 --deepspeed ds_z3.json --output_dir out",
        "transformers", must={"fp16-at-bf16-learning-rate", "warmup-too-short"},
        must_not={"gpu-memory-exceeds-card", "model-too-large-for-cards"},
        configs={"ds_z3.json": DEEPSPEED_ZERO3}, corrected_has=("--learning_rate 5e-06", "--warmup_ratio 0.05"),
    ),
    "accelerate": Case(
        "accelerate launch --config_file acc.yaml train.py --model_name_or_path gpt2 --output_dir out",
        "transformers", must={"processes-above-visible-gpus"}, machine={"gpus": 4},
        configs={"acc.yaml": ACCELERATE_CONFIG}, corrected_has=("accelerate launch --num_processes 4 --config_file",),
    ),
    "deepspeed-launcher": Case(
        "deepspeed --num_gpus 8 train.py --deepspeed ds_z3.json --model_name_or_path meta-llama/Llama-2-7b-hf "
        "--save_total_limit 5 --output_dir out",
        "transformers", must={"checkpoints-exceed-free-disk"}, machine={"disk_free_gib": 200},
        configs={"ds_z3.json": DEEPSPEED_ZERO3}, corrected_has=("--save_total_limit 1",),
    ),
    "llama-factory": Case(
        "llamafactory-cli train examples/train_lora/qwen_lora_sft.yaml",
        "llama-factory", must={"fp16-at-bf16-learning-rate", "warmup-too-short", "dataloader-workers-for-host-memory"},
        machine={"host_memory_gib": 64},
        configs={"examples/train_lora/qwen_lora_sft.yaml": LLAMA_FACTORY_CONFIG,
                 "examples/deepspeed/ds_z3_config.json": DEEPSPEED_ZERO3},
        corrected_has=("learning_rate=5e-05", "warmup_ratio=0.05", "dataloader_num_workers=4"),
    ),
    "lightning": Case(
        "python main.py fit --trainer.devices 8 --trainer.precision bf16-mixed --data.batch_size 4 "
        "--data.num_workers 16",
        "lightning", must={"bf16-without-hardware-support", "dataloader-workers-for-host-memory"},
        must_not={"processes-above-visible-gpus"},
        machine={"gpu": "Tesla V100-SXM2-32GB", "host_memory_gib": 64},
        corrected_has=("--trainer.precision 16-mixed", "--data.num_workers 4"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_findings_per_framework(checker: Checker, name: str) -> None:
    case = CASES[name]
    report = checker.check(case.command, machine=machine(**case.machine), read_config=case.configs.get)
    rules = {finding.rule for finding in report.findings}
    assert report.framework == case.framework
    assert case.must <= rules, f"missing {case.must - rules}; found {rules}"
    assert not case.must_not & rules
    for text in case.corrected_has:
        assert report.corrected_command and text in report.corrected_command, report.corrected_command
    for text in case.corrected_lacks:
        assert report.corrected_command and text not in report.corrected_command


SAFE_TEMPLATES = {
    "single-gpu-lora": (
        "CUDA_VISIBLE_DEVICES=0 swift sft --model Qwen/Qwen2.5-7B-Instruct --tuner_type lora "
        "--per_device_train_batch_size 1 --gradient_accumulation_steps 32 --torch_dtype bfloat16 --learning_rate 1e-4 "
        "--warmup_ratio 0.05 --dataloader_num_workers 4 --max_length 2048 --dataset AI-ModelScope/alpaca-gpt4-data-en "
        "--output_dir output",
        {"gpus": 1, "gpu": "NVIDIA GeForce RTX 4090", "host_memory_gib": 64, "shm_gib": 32, "disk_free_gib": 500},
    ),
    "8-gpu-deepspeed-zero2": (
        "NPROC_PER_NODE=8 swift sft --model Qwen/Qwen2.5-7B-Instruct --tuner_type full --deepspeed zero2 "
        "--per_device_train_batch_size 1 --gradient_accumulation_steps 8 --torch_dtype bfloat16 --learning_rate 1e-5 "
        "--warmup_ratio 0.05 --dataloader_num_workers 4 --max_length 2048 --streaming true --max_steps 2000 "
        "--dataset AI-ModelScope/alpaca-gpt4-data-en --output_dir output",
        {"gpus": 8, "host_memory_gib": 1024, "shm_gib": 512, "disk_free_gib": 4000},
    ),
}


@pytest.mark.parametrize("name", list(SAFE_TEMPLATES))
def test_the_safe_templates_pass_without_a_warning(checker: Checker, name: str) -> None:
    command, facts = SAFE_TEMPLATES[name]
    report = checker.check(command, machine=machine(**facts))
    assert [finding.rule for finding in report.findings if finding.severity != "info"] == []


def test_the_effective_batch_is_always_reported(checker: Checker) -> None:
    report = checker.check(SAFE_TEMPLATES["8-gpu-deepspeed-zero2"][0], machine=machine())
    assert report.effective_batch == {"per_device": 1, "gpus": 8, "accumulation": 8, "total": 64}
    megatron = checker.check("NPROC_PER_NODE=8 megatron sft --model Qwen/Qwen2.5-7B-Instruct --micro_batch_size 2 "
                             "--global_batch_size 64 --tensor_model_parallel_size 2 --load_safetensors true",
                             machine=machine())
    assert megatron.effective_batch == {"per_device": 2, "gpus": 4, "accumulation": 8, "total": 64}


def test_the_memory_fix_keeps_the_effective_batch(checker: Checker) -> None:
    report = checker.check(
        "NPROC_PER_NODE=8 swift sft --model Qwen/Qwen2.5-7B-Instruct --tuner_type full --deepspeed zero3 "
        "--per_device_train_batch_size 32 --gradient_accumulation_steps 1 --max_length 8192 --dataset alpaca",
        machine=machine())
    finding = next(finding for finding in report.findings if finding.rule == "gpu-memory-exceeds-card")
    batch = finding.suggested["per_device_train_batch_size"]
    assert 1 <= batch < 32
    assert batch * finding.suggested["gradient_accumulation_steps"] == 32


def test_the_verification_command_cuts_the_run_down_and_keeps_the_suspects(checker: Checker) -> None:
    report = checker.check(
        "NPROC_PER_NODE=8 swift sft --model Qwen/Qwen2.5-7B-Instruct --torch_dtype float16 --learning_rate 1e-4 "
        "--per_device_train_batch_size 4 --gradient_accumulation_steps 8 --max_length 4096 --dataset a/b c/d "
        "--output_dir /data/runs/big",
        machine=machine())
    verification = read_command(report.verification_command or "")
    assert verification.env == {"NPROC_PER_NODE": "8"}
    assert verification.parameters["dataset"] == ["a/b#10", "c/d#10"]
    assert verification.parameters["per_device_train_batch_size"] == 1
    assert verification.parameters["gradient_accumulation_steps"] == 2
    assert verification.parameters["max_length"] == 512
    assert verification.parameters["max_steps"] == 10
    assert verification.parameters["output_dir"] == "./trainwreck-verify"
    assert verification.parameters["learning_rate"] == 5e-5  # the fix, kept: it is what the run must verify
    assert verification.parameters["torch_dtype"] == "float16"


def test_a_fix_that_exposes_another_problem_is_followed(checker: Checker) -> None:
    report = checker.check("torchrun --nproc_per_node 4 train.py --bf16 --learning_rate 2e-4 --use_peft --output_dir o",
                           machine=machine(gpu="Tesla V100-SXM2-32GB"))
    assert [finding.rule for finding in report.findings] == ["bf16-without-hardware-support",
                                                            "fp16-at-bf16-learning-rate"]
    assert "--fp16 true" in (report.corrected_command or "")
    assert "--learning_rate 5e-05" in (report.corrected_command or "")


def test_the_json_has_the_contract_fields(checker: Checker) -> None:
    data = checker.check(CASES["ms-swift"].command, machine=machine()).to_dict()
    assert {"command", "framework", "machine", "effective_batch", "findings", "corrected_command",
            "verification_command"} <= set(data)
    assert set(data["effective_batch"]) == {"per_device", "gpus", "accumulation", "total"}
    finding = data["findings"][0]
    assert finding["rule"] == "deepspeed-with-device-map"
    assert finding["severity"] == "error"
    assert finding["parameters"] == ["deepspeed", "device_map"]
    assert finding["suggested"] == {"device_map": None}
    assert data["machine"]["gpu"] == "NVIDIA A100-SXM4-80GB"


def test_a_pasted_script_is_read_for_its_launch_line(checker: Checker) -> None:
    script = "#!/bin/sh\nexport NPROC_PER_NODE=8\nswift sft \\\n  --model Qwen/Qwen2.5-7B-Instruct \\\n" \
             "  --deepspeed zero3 --device_map auto\n"
    findings = checker.check(script, machine=machine()).findings
    assert "deepspeed-with-device-map" in {finding.rule for finding in findings}


@pytest.mark.parametrize("text", ["", "   ", "echo hi\nls\n", "a\x00b", "x" * 70_000])
def test_what_is_no_launch_command_is_refused(checker: Checker, text: str) -> None:
    with pytest.raises(CommandError):
        checker.check(text, machine=machine())


def test_the_graver_findings_fix_wins_and_errors_come_first(checker: Checker) -> None:
    report = checker.check(
        "NPROC_PER_NODE=8 swift sft --model Qwen/Qwen2.5-7B-Instruct --tuner_type full --dataset alpaca "
        "--output_dir /out", machine=machine(gpus=1, disk_free_gib=64))
    severities = [finding.severity for finding in report.findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert "--save_total_limit 1" in (report.corrected_command or "")  # the disk's error, not the info's 2
