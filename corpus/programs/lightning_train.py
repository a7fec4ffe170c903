"""A small Lightning run (regression on random features) with switches that make it fail as real runs do."""

from __future__ import annotations

import argparse
import os
import signal

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Features(Dataset):
    def __init__(self, size: int, failure: str) -> None:
        self.size, self.failure = size, failure

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        x = torch.randn(16, generator=torch.Generator().manual_seed(index))
        item = {"features": x, "target": x.mean(dim=0, keepdim=True)}
        if self.failure == "missing-key" and index % 7 == 3:
            del item["target"]
        return item


class Regressor(L.LightningModule):
    def __init__(self, lr: float, failure: str, failure_step: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
        self.lr, self.failure, self.failure_step = lr, failure, failure_step

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        if self.global_step == self.failure_step:
            if self.failure == "host-oom":
                torch.empty((1 << 38,), dtype=torch.float32).fill_(0)
            if self.failure == "cuda-oom":
                torch.empty((1 << 37,), dtype=torch.float32, device=self.device)  # activations of a huge batch
            if self.failure == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
        prediction = self.net(batch["features"].half() if self.failure == "half-on-cpu" else batch["features"])
        loss = nn.functional.mse_loss(prediction, batch["target"])
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_index: int) -> None:
        self.log("val_loss", nn.functional.mse_loss(self.net(batch["features"]), batch["target"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_steps", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--accumulate_grad_batches", type=int, default=1)
    parser.add_argument("--every_n_train_steps", type=int, default=0)
    parser.add_argument("--output_dir", default="out")
    parser.add_argument("--failure", default="none")
    parser.add_argument("--failure_step", type=int, default=10)
    args = parser.parse_args()
    L.seed_everything(0)
    model = Regressor(args.lr, args.failure, args.failure_step)
    if args.failure == "half-on-cpu":
        model = model.half()
    callbacks = []
    if args.every_n_train_steps:
        callbacks.append(ModelCheckpoint(dirpath=args.output_dir, every_n_train_steps=args.every_n_train_steps,
                                         save_top_k=-1))
    trainer = L.Trainer(max_steps=args.max_steps, accelerator=args.accelerator, devices=1,
                        precision=args.precision, accumulate_grad_batches=args.accumulate_grad_batches,
                        log_every_n_steps=5, enable_checkpointing=bool(callbacks), callbacks=callbacks,
                        default_root_dir=args.output_dir, val_check_interval=50, limit_val_batches=4,
                        detect_anomaly=args.failure == "nan")
    train = DataLoader(Features(4096, args.failure), batch_size=args.batch_size, num_workers=args.num_workers,
                       shuffle=True)
    val = DataLoader(Features(64, "none"), batch_size=args.batch_size)
    trainer.fit(model, train, val)


if __name__ == "__main__":
    main()
