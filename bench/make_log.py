"""Generate a realistic multi-rank training log of a given size that ends in a crash (for benchmarks)."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

HEADER = """\
W1128 03:20:12.683000 571 torch/distributed/run.py:851] Setting OMP_NUM_THREADS environment variable for each process to be 1 in default
[INFO:swift] args: TrainArguments(model='Qwen/Qwen2.5-7B-Instruct', per_device_train_batch_size=4, gradient_accumulation_steps=8, learning_rate=1e-05, max_length=4096, dataloader_num_workers=8, bf16=True, deepspeed='zero2', output_dir='output/run')
[INFO:swift] rank: 0, local_rank: 0, world_size: 4, local_world_size: 4
***** Running training *****
  Num examples = 1,250,000
  Total optimization steps = {total}
"""
CRASH = """\
[rank2]: Traceback (most recent call last):
[rank2]:   File "/opt/venv/lib/python3.11/site-packages/transformers/trainer.py", line 3518, in training_step
[rank2]:     self.accelerator.backward(loss, **kwargs)
[rank2]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.91 GiB. GPU 2 has a total capacity of 79.15 GiB of which 1.02 GiB is free. Of the allocated memory 71.3 GiB is allocated by PyTorch.
[rank0]:[E1128 09:12:44.128 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=88121, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600054 milliseconds before timing out.
[rank1]:[E1128 09:12:44.128 ProcessGroupNCCL.cpp:616] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=88121, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600054 milliseconds before timing out.
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
"""


def write_log(path: Path, *, size_bytes: int, seed: int = 7) -> int:
    """Write the log; returns the step at which it crashes."""
    rng = random.Random(seed)
    total = 10_000_000
    step = 0
    written = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        written += out.write(HEADER.format(total=total))
        while written < size_bytes:
            parts = []
            for _ in range(200):
                step += 1
                percent = step * 100 // total
                parts.append(f"\rTrain: {percent:3d}%|▍         | {step}/{total} [1:02:{step % 60:02d}<9:12:00,  {rng.uniform(1, 3):.2f}it/s]")
                if step % 10 == 0:
                    loss = 2.0 + rng.random() * 0.2
                    parts.append(
                        f"\n{{'loss': '{loss:.4f}', 'grad_norm': '{rng.random():.3f}', 'learning_rate': '9.9e-06', "
                        f"'epoch': '{step / 40000:.3f}', 'global_step/max_steps': '{step}/{total}'}}\n"
                    )
                if step % 100 == 0:
                    for rank in range(4):
                        parts.append(
                            f"[rank{rank}]:[INFO] step {step}: tokens/s={rng.randint(9000, 12000)} "
                            f"mem_alloc={rng.uniform(60, 70):.1f}GiB\n"
                        )
            written += out.write("".join(parts))
        written += out.write("\n" + CRASH)
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    step = write_log(args.path, size_bytes=args.size_mb << 20)
    print(f"wrote {args.path} ({args.size_mb} MB), crash at step {step}")


if __name__ == "__main__":
    main()
