"""Generate realistic training logs of a given size and shape, each ending in a crash (for benchmarks).

    .venv/bin/python bench/make_log.py out.log --shape swift-loss-every-step --size-mb 300

Every shape ends the same way: a CUDA OOM on one rank, the NCCL watchdog cascade on the others,
and torchrun's summary. What comes before is what makes logs slow or fast to read.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

CRASH = """\
[rank2]: Traceback (most recent call last):
[rank2]:   File "/opt/venv/lib/python3.11/site-packages/transformers/trainer.py", line 3518, in training_step
[rank2]:     self.accelerator.backward(loss, **kwargs)
[rank2]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.91 GiB. GPU 2 has a total capacity of 79.15 GiB of which 1.02 GiB is free. Of the allocated memory 71.3 GiB is allocated by PyTorch.
[rank0]:[E1128 09:12:44.128 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=88121, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600054 milliseconds before timing out.
[rank1]:[E1128 09:12:44.128 ProcessGroupNCCL.cpp:616] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=88121, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600054 milliseconds before timing out.
E1128 09:12:50.001000 571 torch/distributed/elastic/multiprocessing/api.py:869] failed (exitcode: 1) local_rank: 2 (pid: 620) of binary: /opt/venv/bin/python
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
Root Cause (first observed failure):
[0]:
  rank      : 2 (local_rank: 2)
  exitcode  : 1 (pid: 620)
"""
SWIFT_HEADER = """\
W1128 03:20:12.683000 571 torch/distributed/run.py:851] Setting OMP_NUM_THREADS environment variable for each process to be 1 in default
[INFO:swift] args: TrainArguments(model='Qwen/Qwen2.5-7B-Instruct', per_device_train_batch_size=4, gradient_accumulation_steps=8, learning_rate=1e-05, max_length=4096, dataloader_num_workers=8, bf16=True, deepspeed='zero2', output_dir='output/run')
[INFO:swift] rank: 0, local_rank: 0, world_size: 4, local_world_size: 4
***** Running training *****
  Total optimization steps = {total}
"""
TOTAL = 10_000_000


def _swift_every_step(rng: random.Random, *, saves: bool) -> Iterator[str]:
    yield SWIFT_HEADER.format(total=TOTAL)
    step = 0
    while True:
        step += 1
        yield (f"Train: {step * 100 // TOTAL:3d}%|▍         | {step}/{TOTAL} [1:02:{step % 60:02d}<9:12:00,  "
               f"{rng.uniform(1, 3):.2f}it/s]{{'loss': '{2 + rng.random() * 0.2:.4f}', 'grad_norm': "
               f"'{rng.random():.3f}', 'learning_rate': '9.9e-06', 'token_acc': '0.61', 'epoch': '{step / 40000:.3f}', "
               f"'global_step/max_steps': '{step}/{TOTAL}', 'elapsed_time': '1h', 'remaining_time': '9h'}}\n")
        if saves and step % 50 == 0:
            yield f"[INFO:swift] Saving model checkpoint to /output/run/v0-20251128/checkpoint-{step}\n"
            yield f"[INFO:swift] last_model_checkpoint: /output/run/v0-20251128/checkpoint-{step}\n"


def _hf_eval_warnings(rng: random.Random) -> Iterator[str]:
    yield "***** Running training *****\n  Num examples = 1,250,000\n  Total optimization steps = 10,000,000\n"
    step = 0
    while True:
        step += 1
        yield f"\r  {step * 100 // TOTAL}%|          | {step}/{TOTAL} [12:00:00<99:00:00,  1.21it/s]"
        if step % 10 == 0:
            yield (f"\n{{'loss': {2 + rng.random():.4f}, 'grad_norm': {rng.random():.4f}, 'learning_rate': 1.9e-05, "
                   f"'epoch': {step / 50000:.2f}}}\n")
            yield ("/opt/venv/lib/python3.11/site-packages/torch/utils/checkpoint.py:91: UserWarning: None of the "
                   "inputs have requires_grad=True. Gradients will be None\n  warnings.warn(\n")
        if step % 200 == 0:
            yield "***** Running Evaluation *****\n  Num examples = 2000\n  Batch size = 8\n"
            yield "".join(f"\r{percent}%|##        | {percent}/250 [00:10<00:30,  6.1it/s]" for percent in range(0, 250, 5))
            yield f"\n{{'eval_loss': {2 + rng.random():.4f}, 'eval_runtime': 41.2, 'epoch': {step / 50000:.2f}}}\n"


def _deepspeed_nccl_info(rng: random.Random) -> Iterator[str]:
    yield "[2025-02-17 21:03:11,402] [INFO] [runner.py:607:main] cmd = /opt/conda/bin/python -u -m deepspeed.launcher.launch train.py --deepspeed ds.json\n"
    step = 0
    while True:
        step += 1
        for rank in range(8):
            yield (f"node-3:{4100 + rank}:{4200 + rank} [{rank}] NCCL INFO Channel {rng.randint(0, 31):02d}/0 : "
                   f"{rank}[{rank}] -> {(rank + 1) % 8}[{(rank + 1) % 8}] via P2P/IPC/read\n")
        if step % 10 == 0:
            yield (f"[2025-02-17 22:10:01,100] [INFO] [logging.py:96:log_dist] [Rank 0] step={step}, skipped=0, "
                   f"lr=[1.9e-05], mom=[(0.9, 0.999)]\nsteps: {step} loss: {2 + rng.random():.4f} iter time (s): 0.41\n")


def _megatron(rng: random.Random) -> Iterator[str]:
    yield "using world size: 8, data-parallel size: 1, tensor-model-parallel size: 8\n> building GPT model ...\n"
    step = 0
    while True:
        step += 1
        yield (f" [2025-03-01 10:00:{step % 60:02d}] iteration {step:>8}/{TOTAL:>8} | consumed samples: {step * 256:>12} "
               f"| elapsed time per iteration (ms): 412.3 | learning rate: 1.500000E-04 | global batch size:   256 | "
               f"lm loss: {2 + rng.random():.6E} | loss scale: 1.0 | grad norm: 0.912 | number of skipped "
               "iterations:   0 | number of nan iterations:   0 |\n")
        if step % 100 == 0:
            yield f"saving checkpoint at iteration {step:>8} to /ckpt/run\n  successfully saved checkpoint at iteration {step:>8} to /ckpt/run\n"


def _long_lines(rng: random.Random) -> Iterator[str]:
    step = 0
    while True:
        step += 1
        if rng.random() < 0.3:
            record = {"step": step, "loss": 2 + rng.random(), "samples": ["x" * rng.randint(20, 200)
                                                                          for _ in range(rng.randint(10, 100))]}
            yield json.dumps(record) + "\n"
        else:
            yield f"{{'loss': {2 + rng.random():.4f}, 'learning_rate': 1e-05, 'epoch': {step / 9000:.3f}}}\n"
        if step % 500 == 0:
            yield ("Traceback (most recent call last):\n  File \"train.py\", line 40, in step\nRuntimeError: NCCL retry "
                   "succeeded after transient error; loss=" + "9" * rng.randint(2000, 8000) + "\n")


SHAPES: dict[str, Callable[[random.Random], Iterator[str]]] = {
    "swift-loss-every-step": lambda rng: _swift_every_step(rng, saves=False),
    "swift-saves-every-50": lambda rng: _swift_every_step(rng, saves=True),
    "hf-eval-warnings": _hf_eval_warnings,
    "deepspeed-8-ranks-nccl-info": _deepspeed_nccl_info,
    "megatron-iterations-saves": _megatron,
    "long-lines": _long_lines,
}


def write_log(path: Path, *, size_bytes: int, shape: str = "swift-loss-every-step", seed: int = 7) -> None:
    """Write a log of about size_bytes in the given shape, ending in the crash."""
    rng = random.Random(seed)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        chunk: list[str] = []
        for piece in SHAPES[shape](rng):
            chunk.append(piece)
            if len(chunk) >= 2000:
                written += out.write("".join(chunk))
                chunk.clear()
                if written >= size_bytes:
                    break
        out.write("\n" + CRASH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="swift-loss-every-step")
    args = parser.parse_args()
    write_log(args.path, size_bytes=args.size_mb << 20, shape=args.shape)
    print(f"wrote {args.path} ({args.size_mb} MB, {args.shape})")


if __name__ == "__main__":
    main()
