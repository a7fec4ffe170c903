"""Realistic crashed-run logs for the page tests, the browser tests and the screenshots."""

from __future__ import annotations

import math

TRAIN_COMMAND = (
    "torchrun --nproc_per_node 8 train.py --model_name_or_path Qwen/Qwen2.5-7B --per_device_train_batch_size 4 "
    "--gradient_accumulation_steps 4 --learning_rate 2e-5 --bf16 true --max_steps 1900 --output_dir out/qwen-sft"
)


def _preamble(command: str) -> list[str]:
    return [
        f"+ {command}",
        "W0304 17:02:11.412000 torch/distributed/run.py:793] Setting OMP_NUM_THREADS environment variable to 1",
        "[INFO|configuration_utils.py:733] loading configuration file config.json",
        "[INFO|modeling_utils.py:3934] loading weights file model.safetensors.index.json",
        "Loading checkpoint shards: 100%|██████████| 4/4 [00:06<00:00,  1.61s/it]",
        "[INFO|trainer.py:2243] ***** Running training *****",
        "[INFO|trainer.py:2244]   Num examples = 60,800",
        "[INFO|trainer.py:2247]   Instantaneous batch size per device = 4",
        "[INFO|trainer.py:2250]   Gradient Accumulation steps = 4",
        "[INFO|trainer.py:2251]   Total optimization steps = 1,900",
    ]


def _loss_lines(last_step: int, *, total: int, losses: dict[int, float] | None = None) -> list[str]:
    lines = []
    for step in range(10, last_step + 1, 10):
        loss = (losses or {}).get(step, 2.4 * math.exp(-step / 600) + 0.55 + 0.03 * math.sin(step / 7))
        text = "nan" if math.isnan(loss) else f"{loss:.4f}"
        lines.append(f"{{'loss': {text}, 'grad_norm': 1.52, 'learning_rate': 1.9e-05, 'epoch': {step / total:.2f}}}")
        lines.append(f" {100 * step // total}%|███       | {step}/{total} [10:{step % 60:02d}<20:00,  4.37s/it]")
    return lines


def crash_log(error_lines: list[str], *, step: int | None, total: int = 1900, job: str = "") -> bytes:
    """A fine-tune's log that trains (with loss lines) up to `step` (None: dies while loading), then fails."""
    lines = [f"# job {job}"] if job else []
    lines += _preamble(TRAIN_COMMAND) + (_loss_lines(step, total=total) if step else [])
    return ("\n".join(lines + error_lines) + "\n").encode()


def gpu_oom_log(*, step: int = 853, total: int = 1900, job: str = "") -> bytes:
    """An 8-GPU fine-tune that runs out of GPU memory mid-run, the other ranks cascading after it."""
    return crash_log(
        [
            "Traceback (most recent call last):",
            '  File "/workspace/train.py", line 88, in <module>',
            "    trainer.train()",
            '  File "/usr/local/lib/python3.11/site-packages/torch/autograd/__init__.py", line 289, in backward',
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 3 has a total capacity of "
            "79.15 GiB of which 1.12 GiB is free. Of the allocated memory 74.02 GiB is allocated by PyTorch.",
            "[rank5]:[E304 18:04:12.019] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=48211, "
            "OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600012 milliseconds before timing out.",
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: train.py FAILED",
        ],
        step=step,
        total=total,
        job=job,
    )


def nan_loss_log(*, nan_from: int = 420, total: int = 1900) -> bytes:
    """A run whose loss spikes and then turns NaN."""
    losses = {nan_from - 30: 9.7, nan_from - 20: 14.2, nan_from - 10: 31.0}
    losses |= {step: math.nan for step in range(nan_from, nan_from + 60, 10)}
    lines = _preamble(TRAIN_COMMAND.replace("2e-5", "3e-4")) + _loss_lines(nan_from + 50, total=total, losses=losses)
    lines.append("ValueError: loss is nan, stopping training")
    return ("\n".join(lines) + "\n").encode()


def nccl_timeout_log() -> bytes:
    """A multi-node run where one rank hangs and the NCCL watchdog kills the job."""
    lines = _preamble(TRAIN_COMMAND) + _loss_lines(1210, total=1900)
    lines += [
        "[rank2]:[E304 21:14:52.511] [PG 0 Rank 2] Watchdog caught collective operation timeout: WorkNCCL("
        "SeqNum=91022, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=1800000) ran for 1800094 "
        "milliseconds before timing out.",
        "[rank2]:[E304 21:14:52.512] [PG 0 Rank 2] To avoid data inconsistency, we are taking the entire process down.",
    ]
    return ("\n".join(lines) + "\n").encode()


def missing_field_log() -> bytes:
    """A run that dies while preparing its dataset."""
    lines = [
        *_preamble(TRAIN_COMMAND)[:4],
        "Map:   0%|          | 0/60800 [00:00<?, ? examples/s]",
        "Traceback (most recent call last):",
        '  File "/workspace/data.py", line 41, in preprocess',
        "    text = example['instruction'] + example['output']",
        "KeyError: 'instruction'",
    ]
    return ("\n".join(lines) + "\n").encode()


def script_log() -> bytes:
    """A log whose lines carry HTML that must be shown as text, never run."""
    return (
        b"step 1 <b>bold?</b>\n"
        b"<script>alert(1)</script>\n"
        b"<img src=x onerror=alert(2)>\n"
        b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB <script>alert(3)</script>\n"
    )


MORE_FAILURES: dict[str, list[str]] = {
    "bus_error": [
        "ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).",
        "Bus error (core dumped)",
    ],
    "segfault": ["  traceback : Signal 11 (SIGSEGV) received by PID 1288", "Segmentation fault (core dumped)"],
    "no_space": [
        "Saving model checkpoint to out/qwen-sft/checkpoint-1500",
        "OSError: [Errno 28] No space left on device: '/output/checkpoint-1500/optimizer.pt'",
    ],
    "ecc": ["RuntimeError: CUDA error: uncorrectable ECC error encountered"],
    "device_assert": [
        "RuntimeError: CUDA error: device-side assert triggered",
        "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.",
    ],
    "module_missing": ["ModuleNotFoundError: No module named 'flash_attn'"],
}
