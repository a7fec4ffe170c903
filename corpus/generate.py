#!/usr/bin/env python3
"""Make the genuine crash corpus: run real trainers with scripted failures, keep their logs and excerpts.

    python corpus/generate.py --python /path/to/venv/bin/python [--only ID ...]

The venv needs torch, transformers, datasets, accelerate, lightning and ms-swift (CPU is enough;
`OMP_NUM_THREADS=1` is set). Each scenario below is a real run; its log is kept zstd-compressed in
`corpus/logs/`, followed by the excerpts users paste (the traceback, the last 40 lines, a window with
the last progress line and the error), each labelled from what it alone shows (see corpus/README.md).
Paths of the generating machine are replaced by neutral ones. Not run in CI: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent
PROGRAMS = CORPUS / "programs"
LOGS = CORPUS / "logs"
LABELS = CORPUS / "labels.jsonl"
HF = "programs/hf_train.py"
DDP = "programs/ddp_loop.py"
GPU = "programs/gpu_train.py"
LIGHTNING = "programs/lightning_train.py"
HF_COMMON = ["--report_to", "none", "--logging_steps", "5", "--save_strategy", "no", "--per_device_train_batch_size",
             "4", "--gradient_accumulation_steps", "2", "--learning_rate", "5e-5", "--dataloader_num_workers", "0"]


@dataclass
class Scenario:
    id: str
    framework: str
    argv: list[str]  # `{python}`, `{torchrun}`, `{swift}`, `{work}`, `{model}`, `{data}` are filled in
    category: str
    stage: str
    step: int | None
    remedy_params: list[str]
    notes: str
    split: str = "dev"
    env: dict[str, str] = field(default_factory=dict)
    tmpfs_kib: int | None = None  # the run's output directory on a tmpfs this small (a full disk)
    readonly_after: str | None = None  # output regex after which that tmpfs is remounted read-only
    signal_after: tuple[str, int, str] | None = None  # (output regex, signal, "self" | "child") sent from outside
    exit_code: int | None = None  # given to the labels when the job's status is the only evidence
    cause: str | None = None  # what an excerpt must show for its category to be known (None: any cut shows it)


def hf(*extra: str) -> list[str]:
    return ["{python}", HF, "--output_dir", "{work}/out", *HF_COMMON, *extra]


SCENARIOS = [
    Scenario("hf-keyerror-map-field", "transformers", hf("--text_field", "instruction", "--max_steps", "50"),
             "data_error", "load", None, ["text_field", "dataset"], "dataset map reads a field the rows lack"),
    Scenario("hf-host-oom-collator-mid", "transformers", hf("--failure", "host-oom-collator", "--failure_step", "140",
             "--max_steps", "300"), "host_oom", "mid_run", 140, ["per_device_train_batch_size", "dataloader_num_workers"],
             "collator allocation the host cannot hold at step 140", split="holdout"),
    Scenario("hf-host-oom-collator-early", "transformers", hf("--failure", "host-oom-collator", "--failure_step", "12",
             "--max_steps", "100"), "host_oom", "early", 12, ["per_device_train_batch_size", "dataloader_num_workers"],
             "collator allocation the host cannot hold at step 12"),
    Scenario("hf-nan-lr", "transformers", hf("--learning_rate", "80", "--max_steps", "120", "--max_grad_norm", "0",
             "--lr_scheduler_type", "constant"), "nan_loss", "early", None, ["learning_rate", "max_grad_norm"],
             "learning rate 80 without clipping: the loss diverges to NaN", split="holdout"),
    Scenario("hf-sigkill-mid", "transformers", hf("--failure", "sigkill", "--failure_step", "180", "--max_steps", "300"),
             "host_oom", "mid_run", 180, ["per_device_train_batch_size", "dataloader_num_workers"],
             "the process is SIGKILLed at step 180 as the OOM killer would; the log just stops", exit_code=137),
    Scenario("hf-segfault-early", "transformers", hf("--failure", "segfault", "--failure_step", "20", "--max_steps", "60"),
             "segfault", "early", 20, [], "a native crash in the training process at step 20", exit_code=139,
             split="holdout"),
    Scenario("hf-worker-bus-error", "transformers", hf("--failure", "worker-sigbus", "--failure_step", "40",
             "--max_steps", "200", "--dataloader_num_workers", "2"), "shm_bus_error", "early", None,
             ["dataloader_num_workers", "shm_size"], "a DataLoader worker dies of SIGBUS (shared memory exhausted)"),
    Scenario("hf-worker-killed", "transformers", hf("--failure", "worker-sigkill", "--failure_step", "500",
             "--num_samples", "4096", "--max_steps", "400", "--dataloader_num_workers", "2"), "host_oom", "mid_run", None,
             ["dataloader_num_workers"], "a DataLoader worker is killed by the OOM killer mid-run", split="holdout"),
    Scenario("hf-token-out-of-vocab", "transformers", hf("--failure", "token-out-of-vocab", "--failure_step", "15",
             "--max_steps", "60", "--dataloader_num_workers", "0"), "data_error", "early", 0,
             ["vocab_size", "max_length"], "most rows hold a token id beyond the embedding: IndexError in the first step"),
    Scenario("hf-empty-dataset", "transformers", hf("--failure", "empty-after-filter", "--max_steps", "50"),
             "data_error", "load", None, ["dataset", "max_length"], "a length filter keeps no rows", split="holdout"),
    Scenario("hf-fp16-and-bf16", "transformers", hf("--fp16", "--bf16", "--max_steps", "50"), "dtype_unsupported",
             "load", None, ["bf16", "fp16", "use_cpu"],
             "fp16 and bf16 both asked for on a machine without a GPU: transformers refuses bf16 on it first"),
    Scenario("hf-best-model-strategy", "transformers", hf("--load_best_model_at_end", "--eval_strategy", "steps",
             "--save_strategy", "epoch", "--max_steps", "50"), "config_error", "load", None,
             ["save_strategy", "eval_strategy", "load_best_model_at_end"], "load_best_model_at_end with mismatched strategies",
             split="holdout"),
    Scenario("hf-unknown-flag", "transformers", hf("--per_device_batch_size", "8", "--max_steps", "50"),
             "config_error", "load", None, ["per_device_batch_size"], "a flag the parser does not know"),
    Scenario("hf-model-path-missing", "transformers", hf("--model_name_or_path", "{work}/models/Qwen2.5-0.5B-Instruct",
             "--max_steps", "50"), "model_load_error", "load", None, ["model_name_or_path"],
             "the model folder does not exist", env={"HF_HUB_OFFLINE": "1"}, split="holdout"),
    Scenario("hf-flash-attn-missing", "transformers", hf("--model_name_or_path", "{model}", "--attn_implementation",
             "flash_attention_2", "--max_steps", "50"), "environment_error", "load", None,
             ["attn_implementation"], "FlashAttention 2 asked for but not installed"),
    Scenario("hf-checkpoint-disk-full", "transformers", [*hf("--model_name_or_path", "{model}", "--max_steps", "200"),
             "--save_strategy", "steps", "--save_steps", "120"], "checkpoint_save_error", "checkpoint", 120,
             ["save_total_limit", "output_dir"], "the output folder is a 256 KiB tmpfs: the first checkpoint fills it",
             tmpfs_kib=256, split="holdout"),
    Scenario("hf-sigterm-preempt", "transformers", hf("--max_steps", "100000"), "preempted", "mid_run", None,
             ["save_steps"], "SIGTERM from outside (a scheduler's time limit) in the middle of training",
             signal_after=(r"'epoch': '4\.", signal.SIGTERM, "self"), exit_code=143),
    Scenario("hf-report-to-wandb-missing", "transformers", [*hf("--max_steps", "50"), "--report_to", "wandb"],
             "environment_error", "load", None, ["report_to"],
             "--report_to wandb without wandb installed", split="holdout"),
    Scenario("hf-optim-bnb-missing", "transformers", hf("--optim", "adamw_bnb_8bit", "--max_steps", "50"),
             "environment_error", "load", None, ["optim"], "an 8-bit optimizer without bitsandbytes installed"),
    Scenario("hf-scheduler-choice", "transformers", hf("--lr_scheduler_type", "cosine_restarts", "--max_steps", "50"),
             "config_error", "load", None, ["lr_scheduler_type"], "a scheduler name the parser does not accept",
             split="holdout"),
    Scenario("hf-checkpoint-readonly", "transformers", [*hf("--model_name_or_path", "{model}", "--max_steps", "300"),
             "--save_strategy", "steps", "--save_steps", "150"], "checkpoint_save_error", "checkpoint", 150,
             ["output_dir"], "the output folder turns read-only (a remount) before the save at step 150",
             tmpfs_kib=65536, readonly_after=r"'epoch': '3\.", split="holdout"),
    Scenario("lightning-host-oom-mid", "lightning", ["{python}", LIGHTNING, "--failure", "host-oom", "--failure_step",
             "150", "--max_steps", "300"], "host_oom", "mid_run", 150, ["batch_size", "num_workers"],
             "training_step cannot allocate host memory at step 150"),
    Scenario("lightning-nan-anomaly", "lightning", ["{python}", LIGHTNING, "--failure", "nan", "--lr", "1e9",
             "--max_steps", "300"], "nan_loss", "early", None, ["lr", "gradient_clip_val"],
             "SGD at lr 1e9 with anomaly detection: a backward returns NaN", split="holdout"),
    Scenario("lightning-missing-key", "lightning", ["{python}", LIGHTNING, "--failure", "missing-key", "--max_steps",
             "100", "--batch_size", "1"], "data_error", "early", None, ["dataset", "collate_fn"],
             "some rows lack the target field the training step reads"),
    Scenario("lightning-gpu-missing", "lightning", ["{python}", LIGHTNING, "--accelerator", "gpu"], "gpu_hardware",
             "load", None, ["accelerator"], "accelerator gpu on a machine without one", split="holdout"),
    Scenario("lightning-precision-invalid", "lightning", ["{python}", LIGHTNING, "--precision", "17"], "config_error",
             "load", None, ["precision"], "a precision Lightning does not know"),
    Scenario("lightning-checkpoint-disk-full", "lightning", ["{python}", LIGHTNING, "--every_n_train_steps", "100",
             "--max_steps", "300", "--output_dir", "{work}/out"], "checkpoint_save_error", "checkpoint", 100,
             ["output_dir", "save_top_k"], "the checkpoint folder is a tiny tmpfs", tmpfs_kib=8, split="holdout"),
    Scenario("lightning-sigkill-mid", "lightning", ["{python}", LIGHTNING, "--failure", "sigkill", "--failure_step",
             "220", "--max_steps", "400", "--num_workers", "2"], "host_oom", "unknown", None,
             ["num_workers", "batch_size"], "the process is SIGKILLed at step 220 (the OOM killer); the rich bar "
             "never reached the log, so nothing shows where it was", exit_code=137),
    Scenario("swift-dataset-missing", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{work}/data/alpaca_zh.jsonl", "--tuner_type", "lora",
             "--output_dir", "{work}/out"], "data_error", "load", None, ["dataset"], "--dataset names a missing file"),
    Scenario("swift-torch-dtype-invalid", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--torch_dtype", "float8", "--output_dir", "{work}/out"],
             "config_error", "load", None, ["torch_dtype"], "a torch_dtype ms-swift does not accept", split="holdout"),
    Scenario("swift-quant-bnb-missing", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "lora", "--quant_method", "bnb",
             "--quant_bits", "4", "--output_dir", "{work}/out"], "environment_error", "load", None,
             ["quant_method", "quant_bits"], "QLoRA with bitsandbytes not installed"),
    Scenario("swift-attn-flash-missing", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "lora", "--attn_impl", "flash_attn",
             "--output_dir", "{work}/out", "--max_steps", "20"], "environment_error", "load", None, ["attn_impl"],
             "--attn_impl flash_attn without flash-attn installed", split="holdout"),
    Scenario("swift-report-wandb-missing", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "lora", "--report_to", "wandb",
             "--output_dir", "{work}/out", "--max_steps", "20"], "environment_error", "load", None, ["report_to"],
             "--report_to wandb without wandb installed"),
    Scenario("swift-ddp-rank-killed", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "lora", "--max_steps", "100000",
             "--logging_steps", "5", "--output_dir", "{work}/out", "--save_steps", "100000",
             "--per_device_train_batch_size", "2", "--dataloader_num_workers", "0", "--ddp_backend", "gloo"],
             "host_oom", "mid_run", 110, ["per_device_train_batch_size", "max_length", "dataloader_num_workers"],
             "two ranks under swift's torchrun; one is SIGKILLed at step 110 (the OOM killer)",
             env={"NPROC_PER_NODE": "2"}, signal_after=(r"'global_step/max_steps': '11\d/", signal.SIGKILL, "last-child"),
             split="holdout", cause=r"exitcode\s*: -9|Signal 9|-9"),
    Scenario("ddp-gloo-hang-mid", "pytorch", ["{torchrun}", "--nproc_per_node", "2", DDP, "--failure", "hang-rank1",
             "--failure-step", "230", "--timeout-seconds", "10", "--steps", "400"], "nccl_timeout", "mid_run", 230,
             ["timeout", "ddp_timeout"], "rank 1 stops before the collective of step 230; rank 0 times out",
             split="holdout", cause=r"Timed out waiting"),
    Scenario("ddp-gloo-hang-early", "pytorch", ["{torchrun}", "--nproc_per_node", "2", DDP, "--failure", "hang-rank1",
             "--failure-step", "25", "--timeout-seconds", "10", "--steps", "100", "--log-format", "epoch",
             "--log-interval", "5"], "nccl_timeout", "early", 25, ["timeout", "ddp_timeout"],
             "rank 1 hangs at step 25 of an mmcv-style loop", cause=r"Timed out waiting"),
    Scenario("ddp-rank-sigkill", "pytorch", ["{torchrun}", "--nproc_per_node", "2", DDP, "--failure", "sigkill-rank1",
             "--failure-step", "160", "--steps", "300", "--log-format", "updates"], "host_oom", "mid_run", 160,
             ["batch_size", "num_workers"], "rank 1 SIGKILLed at update 160 (the OOM killer); torchrun's verdict", cause=r"exitcode\s*: -9|Signal 9"),
    Scenario("ddp-rank-segfault", "pytorch", ["{torchrun}", "--nproc_per_node", "2", DDP, "--failure",
             "segfault-rank0", "--failure-step", "60", "--steps", "200", "--log-format", "steps-bar"],
             "segfault", "early", 60, [], "rank 0 segfaults at step 60 of a bar described Steps", split="holdout", cause=r"exitcode\s*: -11|SIGSEGV|Segmentation"),
    Scenario("ddp-host-oom-iteration", "pytorch", ["{torchrun}", "--nproc_per_node", "2", DDP, "--failure",
             "host-oom", "--failure-step", "420", "--steps", "600"], "host_oom", "mid_run", 420,
             ["batch_size", "batch-size"], "rank 0 cannot allocate host memory at iteration 420", cause=r"DefaultCPUAllocator|can't allocate memory"),
    Scenario("ddp-nan-iteration", "pytorch", ["{python}", DDP, "--lr", "5", "--failure", "nan-stop",
             "--steps", "400", "--log-interval", "1"], "nan_loss", "early", 4, ["lr", "learning_rate"],
             "SGD at lr 5 diverges; the script stops on a non-finite loss", split="holdout"),
    Scenario("ddp-port-in-use", "pytorch", ["{torchrun}", "--nproc_per_node", "2", "--master_port", "{busy_port}", DDP],
             "distributed_config", "load", None, ["master_port"], "the rendezvous port is taken by another job"),
    Scenario("swift-model-missing", "ms-swift", ["{swift}", "sft", "--model", "{work}/models/Qwen2.5-7B-Instruct",
             "--dataset", "{data}", "--tuner_type", "lora", "--output_dir", "{work}/out"], "model_load_error", "load",
             None, ["model"], "--model names a folder that does not exist", split="holdout"),
    Scenario("swift-template-not-matched", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type",
             "qwen2", "--dataset", "{data}", "--train_type", "lora", "--output_dir", "{work}/out"], "config_error",
             "load", None, ["template"], "a local model without --template: ms-swift cannot choose the template"),
    Scenario("swift-dataset-wrong-type", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{bad_data}", "--strict", "true", "--tuner_type", "lora",
             "--output_dir", "{work}/out",
             "--max_steps", "20"], "data_error", "load", None, ["dataset"],
             "a row whose messages are not a list of role/content mappings", split="holdout"),
    Scenario("swift-deepspeed-missing", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "lora", "--deepspeed", "zero2",
             "--output_dir", "{work}/out"], "environment_error", "load", None, ["deepspeed"],
             "--deepspeed zero2 without DeepSpeed installed"),
    Scenario("swift-nan-lr", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "full", "--learning_rate", "500",
             "--max_grad_norm", "0", "--max_steps", "60", "--logging_steps", "1", "--output_dir", "{work}/out",
             "--save_steps", "1000", "--per_device_train_batch_size", "2"], "nan_loss", "early", None,
             ["learning_rate", "max_grad_norm"], "full fine-tune at learning rate 500: NaN loss"),
    Scenario("swift-worker-killed", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "lora", "--max_steps", "100000",
             "--logging_steps", "5", "--output_dir", "{work}/out", "--save_steps", "100000",
             "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "4"], "host_oom", "mid_run", 120,
             ["dataloader_num_workers", "per_device_train_batch_size", "max_length", "streaming"],
             "a DataLoader worker of the swift run is SIGKILLed (OOM killer) at step 120",
             signal_after=(r"'global_step/max_steps': '1[2-9]\d/", signal.SIGKILL, "last-child"), split="holdout"),
    Scenario("swift-sigkill-trainer", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "lora", "--max_steps", "100000",
             "--logging_steps", "5", "--output_dir", "{work}/out", "--save_steps", "100000",
             "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "4",
             "--dataloader_num_workers", "0"], "host_oom", "mid_run", 110,
             ["per_device_train_batch_size", "max_length", "streaming", "dataloader_num_workers"],
             "the training process under the swift wrapper is SIGKILLed (OOM killer) at step 110",
             signal_after=(r"'global_step/max_steps': '11\d/", signal.SIGKILL, "first-child"), exit_code=247),
    Scenario("swift-checkpoint-disk-full", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "full", "--max_steps", "60",
             "--logging_steps", "5", "--output_dir", "{work}/out", "--save_steps", "40",
             "--per_device_train_batch_size", "2"], "checkpoint_save_error", "checkpoint", 40,
             ["save_total_limit", "output_dir"], "the output folder is a small tmpfs that the checkpoint fills",
             tmpfs_kib=600),
    Scenario("swift-truncation-choice", "ms-swift", ["{swift}", "sft", "--model", "{model}", "--model_type", "qwen2",
             "--template", "qwen", "--dataset", "{data}", "--tuner_type", "lora", "--max_length", "8",
             "--truncation_strategy", "raise", "--max_steps", "20", "--output_dir", "{work}/out"], "config_error",
             "load", None, ["truncation_strategy"], "a value the argument parser does not accept", split="holdout"),
]

def gpu(*extra: str) -> list[str]:
    return ["{python}", GPU, "--output_dir", "{work}/out", "--report_to", "none", "--logging_steps", "10",
            "--save_strategy", "no", "--dataloader_num_workers", "2", *extra]


GPU_SCENARIOS = [
    Scenario("gpu-oom-seq-warmup-mid", "transformers", gpu("--failure", "seq-warmup-oom", "--failure_step", "140",
             "--per_device_train_batch_size", "16", "--max_length", "512", "--attn_implementation", "eager",
             "--max_steps", "300", "--bf16"), "gpu_oom", "mid_run", 256,
             ["per_device_train_batch_size", "max_length", "attn_implementation"],
             "batches 64 times longer once the workers restart at the second epoch (step 256), eager attention"),
    Scenario("gpu-oom-eval", "transformers", gpu("--per_device_train_batch_size", "8", "--per_device_eval_batch_size",
             "1024", "--max_length", "1024", "--eval_strategy", "steps", "--eval_steps", "30", "--max_steps", "100"),
             "gpu_oom", "early", 60, ["per_device_eval_batch_size", "eval_accumulation_steps"],
             "the evaluation at step 60 meets a batch whose logits do not fit", split="holdout"),
    Scenario("gpu-oom-load", "pytorch", gpu("--failure", "load-oom", "--max_steps", "10"), "gpu_oom", "load", None,
             ["torch_dtype", "deepspeed", "device_map"], "the model's state does not fit on the card before training"),
    Scenario("gpu-device-assert-first-step", "transformers", gpu("--failure", "token-out-of-vocab", "--failure_step",
             "130", "--per_device_train_batch_size", "8", "--max_steps", "300"), "cuda_error", "early", 0,
             ["vocab_size", "pad_token_id"], "most rows hold a token id past the embedding: device-side assert in the "
             "first step",
             split="holdout"),
    Scenario("gpu-nan-fp16", "transformers", gpu("--fp16", "--learning_rate", "3", "--max_grad_norm", "0",
             "--per_device_train_batch_size", "8", "--max_steps", "200", "--logging_steps", "1",
             "--lr_scheduler_type", "constant"), "nan_loss", "early", None, ["learning_rate", "max_grad_norm", "fp16"],
             "fp16 at learning rate 3 without clipping diverges"),
    Scenario("gpu-oom-torchrun-first-step", "pytorch", ["{torchrun}", "--nproc_per_node", "1",
             *gpu("--per_device_train_batch_size", "512", "--max_length", "4096", "--max_steps", "10",
                  "--attn_implementation", "eager")[1:]], "gpu_oom", "early", None,
             ["per_device_train_batch_size", "max_length", "attn_implementation"],
             "a first batch far too large, under torchrun", split="holdout"),
    Scenario("gpu-oom-seq-warmup-step140", "transformers", gpu("--failure", "seq-warmup-oom", "--failure_step", "140",
             "--per_device_train_batch_size", "16", "--max_length", "512", "--attn_implementation", "eager",
             "--max_steps", "300", "--bf16", "--dataloader_num_workers", "0"), "gpu_oom", "mid_run", 140,
             ["per_device_train_batch_size", "max_length", "attn_implementation"],
             "sequence-length warmup: batches 64 times longer from step 140, eager attention", split="holdout"),
    Scenario("gpu-nan-bf16-lr", "transformers", gpu("--bf16", "--learning_rate", "20", "--max_grad_norm", "0",
             "--per_device_train_batch_size", "8", "--max_steps", "200", "--logging_steps", "5",
             "--lr_scheduler_type", "constant"), "nan_loss", "early", None, ["learning_rate", "max_grad_norm"],
             "bf16 at learning rate 20 without clipping"),
    Scenario("gpu-oom-torchrun-mid", "pytorch", ["{torchrun}", "--nproc_per_node", "1",
             *gpu("--failure", "seq-warmup-oom", "--failure_step", "120", "--per_device_train_batch_size", "16",
                  "--max_length", "512", "--attn_implementation", "eager", "--max_steps", "300",
                  "--dataloader_num_workers", "0")[1:]], "gpu_oom", "mid_run", 120,
             ["per_device_train_batch_size", "max_length", "attn_implementation"],
             "longer batches from step 120 under torchrun: the OOM and torchrun's summary"),
    Scenario("gpu-label-assert-mid", "transformers", gpu("--failure", "label-out-of-range", "--failure_step", "120",
             "--per_device_train_batch_size", "8", "--max_steps", "300", "--dataloader_num_workers", "0"),
             "cuda_error", "mid_run", 120, ["vocab_size", "num_labels"],
             "labels past the vocabulary from step 120: an assert in the loss kernel", split="holdout"),
    Scenario("gpu-oom-build-model", "transformers", gpu("--failure", "build-on-gpu", "--hidden_size", "16384",
             "--num_hidden_layers", "96", "--vocab_size", "152064"), "gpu_oom", "load", None,
             ["torch_dtype", "device_map", "deepspeed"], "a 300B-parameter model built on one GPU in float32"),
    Scenario("gpu-lightning-oom", "lightning", ["{python}", "programs/lightning_train.py", "--accelerator", "gpu",
             "--failure", "cuda-oom", "--failure_step", "130", "--max_steps", "300"], "gpu_oom", "mid_run", 130,
             ["batch_size", "accumulate_grad_batches"], "Lightning on a GPU: a batch that does not fit at step 130",
             split="holdout"),
]


NEUTRAL_VENV = "/home/ml/venv"
NEUTRAL_WORK = "/home/ml/runs"
NEUTRAL_CODE = "/home/ml/train"
EXCERPT_TAIL_LINES = 40
# What an excerpt must show for its stage to be known (corpus/README.md says why these).
SETUP_EVIDENCE = re.compile(
    r"from_pretrained|load_dataset|\bin map\b|arrow_dataset\.py|__post_init__|parse_args|HfArgumentParser|"
    r"get_model_tokenizer|_prepare_dataset|run sh:|\[INFO:swift\]|Loading|Map:|Generating|_init_process_group|"
    r"init_process_group|rendezvous|EADDRINUSE|address already in use|encode\(|preprocess|DatasetLoader|"
    r"TrainingArguments|import_utils|check_imports|is_deepspeed_available|requires_backends|argparse|usage:|"
    r"error: argument --|invalid choice|unrecognized arguments|trainer\.py\", line \d+, in __init__|"
    r"in add_callback|in create_optimizer|in _setup_devices|accelerator_connector"
)
PROGRESS_EVIDENCE = re.compile(
    r"\d+/\d+ \[|'loss'|\biteration \d+|num_updates=\d+|Epoch \[\d+\]\[\d+/\d+\]|global_step"
)
SAVE_EVIDENCE = re.compile(r"(?i)saving model checkpoint|_save_checkpoint|save_pretrained|save_model|checkpoint-\d+|"
                           r"safetensors.*save|save_file|torch\.save|\bin \w*save\w*\b")
STEP_SHOWN = re.compile(r"(\d+)/\d+ \[|global_step/max_steps': '(\d+)/|\bat step (\d+)")
TRAINING_FRAMES = re.compile(r"\bin (?:training_step|compute_loss|_inner_training_loop|backward|forward|"
                             r"__next__|_next_data|optimizer_step|train_step)\b|\bloss\.backward\(\)")


def run_scenario(scenario: Scenario, *, python: Path, root: Path, model: Path, data: Path, bad_data: Path) -> tuple[str, int]:
    """Run one scenario; the merged stdout/stderr with this machine's paths made neutral, and the exit status."""
    work = root / scenario.id
    work.mkdir(parents=True, exist_ok=True)
    out = work / "out"
    out.mkdir(exist_ok=True)
    mounted = False
    if scenario.tmpfs_kib:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={scenario.tmpfs_kib}k", "tmpfs", str(out)], check=True)
        mounted = True
    busy = None
    values = {"python": str(python), "torchrun": str(python.parent / "torchrun"), "swift": str(python.parent / "swift"),
              "work": str(work), "model": str(model), "data": str(data), "bad_data": str(bad_data)}
    if any("{busy_port}" in part for part in scenario.argv):
        import socket

        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        values["busy_port"] = str(busy.getsockname()[1])
    argv = [part.format(**values) if "{" in part else str(CORPUS / part) if part.startswith("programs/") else part
            for part in scenario.argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
           "MODELSCOPE_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "120", **scenario.env}
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    assert process.stdout is not None
    chunks: list[bytes] = []
    signalled = False
    remounted = False
    os.set_blocking(process.stdout.fileno(), False)
    while True:
        piece = process.stdout.read()
        if piece:
            chunks.append(piece)
        if process.poll() is not None and not piece:
            break
        if time.monotonic() - started > 600:
            os.killpg(process.pid, signal.SIGKILL)
        if scenario.readonly_after and not remounted and re.search(scenario.readonly_after.encode(),
                                                                     b"".join(chunks[-50:])):
            subprocess.run(["mount", "-o", "remount,ro", str(out)], check=True)
            remounted = True
        if scenario.signal_after and not signalled:
            pattern, number, target = scenario.signal_after
            if re.search(pattern.encode(), b"".join(chunks[-50:])):
                victim = process.pid if target == "self" else _children(process.pid)[0 if target == "first-child" else -1]
                os.kill(victim, number)
                signalled = True
        time.sleep(0.05)
    if busy is not None:
        busy.close()
    if mounted:
        subprocess.run(["umount", "-l", str(out)], check=False)
    text = b"".join(chunks).decode("utf-8", "replace")
    return neutral_paths(text, python=python, work=root), process.returncode


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    grandchildren = [grand for child in found for grand in _children(child)]
    return found + grandchildren


def neutral_paths(text: str, *, python: Path, work: Path) -> str:
    venv = str(python.parent.parent)
    for local, neutral in ((venv, NEUTRAL_VENV), (str(work), NEUTRAL_WORK), (str(PROGRAMS), NEUTRAL_CODE),
                           (str(CORPUS), NEUTRAL_CODE)):
        text = text.replace(local, neutral)
    return text


def excerpts(text: str) -> dict[str, str]:
    """The cuts users paste: the traceback, the last 40 lines, and the last progress line up to the error."""
    lines = text.splitlines()
    cuts = {"tail40": "\n".join(lines[-EXCERPT_TAIL_LINES:]) + "\n"}
    starts = [index for index, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if starts:
        first_of_last_block = starts[-1]
        while first_of_last_block > 0 and starts.count(first_of_last_block - 1):
            first_of_last_block -= 1
        # the first traceback of the final burst of errors: the one users quote
        burst = [index for index in starts if index >= len(lines) - 400] or starts[-1:]
        cuts["traceback"] = "\n".join(lines[burst[0]:]) + "\n"
        progress = [index for index, line in enumerate(lines[: burst[0]]) if PROGRESS_EVIDENCE.search(line)]
        if progress:
            cuts["window"] = "\n".join(lines[progress[-1]:]) + "\n"
    return {name: cut for name, cut in cuts.items() if cut.strip() and cut != text}


def label_excerpt(scenario: Scenario, text: str) -> dict:
    """The label of a cut, from what it alone shows: the category only where the cut keeps the error, the
    stage only where it keeps its evidence."""
    if scenario.cause is not None and not re.search(scenario.cause, text):
        return {"category": "unknown", "remedy_params": [], **_stage_of_excerpt(scenario, text)}
    return _stage_of_excerpt(scenario, text)


def _first_bad_loss_stage(text: str) -> tuple[str, int] | None:
    """Where an excerpt of a diverged run first shows a NaN/Inf (or absurd) loss: the stage by the step there."""
    steps: list[int] = []
    for line in text.splitlines():
        steps += [int(next(group for group in found if group)) for found in STEP_SHOWN.findall(line)]
        if re.search(r"(?i)(?:loss|grad_norm)'?:? '?(?:nan|-?inf)|returned nan|loss is (?:nan|inf)", line) and steps:
            return ("mid_run" if steps[-1] > 100 else "early"), steps[-1]
    return None


def _stage_of_excerpt(scenario: Scenario, text: str) -> dict:
    shows_progress = PROGRESS_EVIDENCE.search(text) is not None
    if scenario.category == "nan_loss" and (first_bad := _first_bad_loss_stage(text)):
        return {"stage": first_bad[0], "step": scenario.step}
    stage = scenario.stage
    step = scenario.step if shows_progress else None
    if stage == "load":
        known = SETUP_EVIDENCE.search(text) is not None
    elif stage == "checkpoint":
        known = SAVE_EVIDENCE.search(text) is not None
    else:
        known = shows_progress or TRAINING_FRAMES.search(text) is not None
        if known and not shows_progress and stage == "mid_run":
            stage = "early"  # a crash inside the loop with no step shown reads as the first steps
    return {"stage": stage if known else "unknown", "step": step if known else None}


def write_case(cases: list[dict], scenario: Scenario, cut: str, text: str, *, source: str) -> None:
    case_id = scenario.id if cut == "full" else f"{scenario.id}--{cut}"
    path = LOGS / f"{case_id}.log.zst"
    import zstandard  # not needed on the GPU machine, which only runs the scenarios

    path.write_bytes(zstandard.ZstdCompressor(level=19).compress(text.encode("utf-8")))
    cases.append(case_label(scenario, cut, text, case_id=case_id, source=source))


def case_label(scenario: Scenario, cut: str, text: str, *, case_id: str, source: str) -> dict:
    """The labels.jsonl entry of one log: the scenario's truth, cut down to what an excerpt shows."""
    shown = {"stage": scenario.stage, "step": scenario.step} if cut == "full" else label_excerpt(scenario, text)
    return {
        "id": case_id, "file": f"logs/{case_id}.log.zst", "split": scenario.split, "framework": scenario.framework,
        "category": scenario.category, "remedy_params": scenario.remedy_params,
        **({"exit_code": scenario.exit_code} if scenario.exit_code is not None else {}),
        **shown, "cut": cut, "source": source, "notes": scenario.notes,
    }


def relabel(cases: list[dict]) -> None:
    """Label every kept log again from its scenario (after a change to the labelling rules), without runs."""
    import zstandard

    scenarios = {scenario.id: scenario for scenario in SCENARIOS + GPU_SCENARIOS}
    for index, case in enumerate(cases):
        text = zstandard.ZstdDecompressor().decompress((CORPUS / case["file"]).read_bytes()).decode("utf-8")
        cases[index] = case_label(scenarios[case["id"].split("--")[0]], case["cut"], text, case_id=case["id"],
                                  source=case["source"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, help="the venv's python with the trainers installed")
    parser.add_argument("--only", nargs="*", default=None, help="scenario ids to (re)make; the rest stay")
    parser.add_argument("--gpu-raw", type=Path, help="on the GPU machine: run the GPU scenarios, raw logs here")
    parser.add_argument("--from-raw", type=Path, help="label the raw GPU logs in this folder into the corpus")
    parser.add_argument("--relabel", action="store_true", help="label the kept logs again; run nothing")
    args = parser.parse_args()
    if args.gpu_raw:
        run_gpu_raw(args.python, args.gpu_raw, args.only)
        return
    LOGS.mkdir(exist_ok=True)
    cases = [json.loads(line) for line in LABELS.read_text().splitlines()] if LABELS.exists() else []
    if args.relabel:
        relabel(cases)
    elif args.from_raw:
        label_gpu_raw(cases, args.from_raw)
    else:
        make_cpu_cases(cases, args.python, args.only)
    order = {scenario.id: index for index, scenario in enumerate(SCENARIOS + GPU_SCENARIOS)}
    cases[:] = [case for case in cases if case["id"].split("--")[0] in order]  # scenarios since removed
    cases.sort(key=lambda case: (order.get(case["id"].split("--")[0], len(order)), case["id"]))
    LABELS.write_text("".join(json.dumps(case) + "\n" for case in cases))


def _keep_others(cases: list[dict], remade: set[str]) -> None:
    cases[:] = [case for case in cases if case["id"].split("--")[0] not in remade]


def _write_with_excerpts(cases: list[dict], scenario: Scenario, text: str, source: str) -> None:
    write_case(cases, scenario, "full", text, source=source)
    for cut, excerpt in excerpts(text).items():
        write_case(cases, scenario, cut, excerpt, source=source)


def make_cpu_cases(cases: list[dict], python: Path, only: list[str] | None) -> None:
    wanted = [scenario for scenario in SCENARIOS if only is None or scenario.id in only]
    _keep_others(cases, {scenario.id for scenario in wanted})
    versions = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(', '.join("
                               "f'{n} {m.version(n)}' for n in ('torch', 'transformers', 'ms_swift')))"],
                              capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="trainwreck-corpus-") as scratch:
        root = Path(scratch)
        model, data, bad_data = root / "models" / "Qwen2-tiny", root / "sft.jsonl", root / "sft-bad.jsonl"
        subprocess.run([str(python), str(PROGRAMS / "make_tiny_model.py"), str(model)], check=True,
                       capture_output=True)
        rows = [{"messages": [{"role": "user", "content": f"w{i} w{i + 1} w{i + 2}"},
                              {"role": "assistant", "content": f"w{i + 3} w{i + 4} w{i + 5} w{i + 6}"}]}
                for i in range(300)]
        data.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
        bad_row = {"messages": [{"role": "user", "content": ["w1", "w2"]}, {"role": "assistant", "content": 7}]}
        bad_data.write_text("\n".join(json.dumps(row) for row in [*rows[:40], bad_row, *rows[40:]]) + "\n")
        for scenario in wanted:
            started = time.monotonic()
            text, status = run_scenario(scenario, python=python, root=root, model=model, data=data,
                                        bad_data=bad_data)
            source = f"genuine CPU run ({versions}); corpus/generate.py scenario {scenario.id}, exit status {status}"
            _write_with_excerpts(cases, scenario, text, source)
            print(f"{scenario.id}: exit {status}, {len(text.splitlines())} lines, "
                  f"{time.monotonic() - started:.0f} s", file=sys.stderr)


def run_gpu_raw(python: Path, target: Path, only: list[str] | None) -> None:
    """On the GPU machine: run every GPU scenario and leave its raw log and exit status in target."""
    target.mkdir(parents=True, exist_ok=True)
    statuses = {}
    with tempfile.TemporaryDirectory(prefix="trainwreck-corpus-") as scratch:
        for scenario in GPU_SCENARIOS:
            if only is not None and scenario.id not in only:
                continue
            started = time.monotonic()
            text, status = run_scenario(scenario, python=python, root=Path(scratch), model=Path(), data=Path(),
                                        bad_data=Path())
            (target / f"{scenario.id}.log").write_text(text)
            statuses[scenario.id] = status
            print(f"{scenario.id}: exit {status}, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    versions = subprocess.run([str(python), "-c", "import importlib.metadata as m, torch; print(', '.join("
                               "f'{n} {m.version(n)}' for n in ('torch', 'transformers')), torch.cuda.get_device_name())"],
                              capture_output=True, text=True, check=False).stdout.strip()
    (target / "status.json").write_text(json.dumps({"statuses": statuses, "versions": versions}))


def label_gpu_raw(cases: list[dict], raw: Path) -> None:
    status = json.loads((raw / "status.json").read_text())
    present = [scenario for scenario in GPU_SCENARIOS if (raw / f"{scenario.id}.log").exists()]
    _keep_others(cases, {scenario.id for scenario in present})
    for scenario in present:
        text = (raw / f"{scenario.id}.log").read_text()
        source = (f"genuine GPU run ({status['versions']}); corpus/generate.py scenario {scenario.id}, "
                  f"exit status {status['statuses'][scenario.id]}")
        _write_with_excerpts(cases, scenario, text, source)


if __name__ == "__main__":
    main()
