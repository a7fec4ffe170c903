"""A plain PyTorch DDP loop (gloo on CPU, NCCL on GPUs) that prints progress the way research scripts do.

`--log-format` picks how progress is printed: `iteration` (`iteration 812 loss 0.37`), `epoch` (mmcv's
`Epoch [2][350/12000]`), `updates` (fairseq's `num_updates=4100`), `steps-bar` (a tqdm bar described
`Steps`). Failures are real: a rank that never reaches the collective, a rank killed by a signal, a
NaN from an exploding learning rate, a native crash.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import math
import os
import signal
import sys
import time

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--log-format", default="iteration")
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--timeout-seconds", type=int, default=30)
    parser.add_argument("--failure", default="none")
    parser.add_argument("--failure-step", type=int, default=50)
    args = parser.parse_args()

    distributed = "RANK" in os.environ
    rank = int(os.environ.get("RANK", "0"))
    if distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=args.timeout_seconds))
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 1)).to(device)
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    epoch_size = 100
    bar = tqdm(total=args.steps, desc="Steps", disable=args.log_format != "steps-bar" or rank != 0)
    for step in range(1, args.steps + 1):
        inputs = torch.randn(args.batch_size, 32, device=device)
        target = inputs.mean(dim=1, keepdim=True)
        if step == args.failure_step:
            fail(args.failure, rank)
        loss = nn.functional.mse_loss(model(inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        bar.update(1)
        if rank == 0 and step % args.log_interval == 0:
            report(args.log_format, step, epoch_size, loss.item(), bar)
        if args.failure == "nan-stop" and not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}")
    bar.close()
    if distributed:
        dist.destroy_process_group()


def report(log_format: str, step: int, epoch_size: int, loss: float, bar: tqdm) -> None:
    if log_format == "iteration":
        print(f"iteration {step} loss {loss:.4f}", flush=True)
    elif log_format == "epoch":
        epoch, within = divmod(step - 1, epoch_size)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} - mmdet - INFO - Epoch [{epoch + 1}][{within + 1}/{epoch_size}]\tlr: 1.000e-03, "
              f"eta: 0:10:00, time: 0.210, data_time: 0.010, memory: 1024, loss: {loss:.4f}", flush=True)
    elif log_format == "updates":
        print(f"| epoch 001:  {step} / 1000 loss={loss:.3f}, ppl=9.1, wps=3000, num_updates={step}, lr=0.0005",
              flush=True)
    elif log_format == "steps-bar":
        bar.set_postfix(loss=f"{loss:.4f}")


def fail(failure: str, rank: int) -> None:
    if failure == "hang-rank1" and rank == 1:
        time.sleep(3600)
    elif failure == "sigkill-rank1" and rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    elif failure == "segfault-rank0" and rank == 0:
        ctypes.string_at(0)
    elif failure == "abort-rank1" and rank == 1:
        os.abort()
    elif failure == "host-oom" and rank == 0:
        torch.empty((1 << 38,), dtype=torch.float32).fill_(0)
    elif failure == "assert-exit" and rank == 0:
        sys.exit(3)


if __name__ == "__main__":
    main()
