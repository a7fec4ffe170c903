"""A small causal-LM fine-tune with the Hugging Face Trainer, and switches that make it fail the way real runs do.

Every failure is the real library's own: the switches only put the run where real runs go wrong
(a huge allocation in the collator, a dataset without the field the preprocessing reads, a rank
that stops answering, a worker that dies). Run under `corpus/generate.py`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    HfArgumentParser,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)


@dataclass
class ScriptArguments:
    model_name_or_path: str | None = field(default=None)
    num_samples: int = field(default=256)
    max_length: int = field(default=64)
    vocab_size: int = field(default=512)
    text_field: str = field(default="text")
    failure: str = field(default="none")
    failure_step: int = field(default=10)
    attn_implementation: str | None = field(default=None)


def build_dataset(args: ScriptArguments) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(0, args.vocab_size, (args.num_samples, args.max_length), generator=generator)
    if args.failure == "token-out-of-vocab":
        rows[args.failure_step * 4 :, 3] = args.vocab_size + 7
    raw = Dataset.from_dict({"text": [" ".join(map(str, row.tolist())) for row in rows]})

    def encode(example: dict) -> dict:
        ids = [int(token) for token in example[args.text_field].split()]
        return {"input_ids": ids, "labels": ids}

    if args.failure == "empty-after-filter":
        raw = raw.filter(lambda example: len(example["text"]) > 100_000)
    return raw.map(encode, remove_columns=["text"], num_proc=None)


class Collator:
    def __init__(self, args: ScriptArguments) -> None:
        self.args = args
        self.calls = 0

    def __call__(self, features: list[dict]) -> dict:
        self.calls += 1
        step = self.calls // max(1, int(os.environ.get("GRADIENT_ACCUMULATION", "1")))
        if self.args.failure == "host-oom-collator" and step >= self.args.failure_step:
            torch.empty((1 << 38,), dtype=torch.float32).fill_(0)
        input_ids = torch.tensor([feature["input_ids"] for feature in features])
        return {"input_ids": input_ids, "labels": input_ids.clone()}


class FailureInjector(TrainerCallback):
    """Puts the run where real runs die, at a given optimizer step."""

    def __init__(self, args: ScriptArguments) -> None:
        self.args = args

    def on_step_end(self, training_args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step != self.args.failure_step:
            return
        failure = self.args.failure
        if failure == "sigkill" or (failure == "sigkill-rank1" and int(os.environ.get("RANK", "0")) == 1):
            os.kill(os.getpid(), signal.SIGKILL)
        elif failure == "segfault":
            ctypes.string_at(0)
        elif failure == "hang-rank1" and int(os.environ.get("RANK", "0")) == 1:
            time.sleep(3600)


def main() -> None:
    script_args, training_args = HfArgumentParser((ScriptArguments, TrainingArguments)).parse_args_into_dataclasses()
    os.environ["GRADIENT_ACCUMULATION"] = str(training_args.gradient_accumulation_steps)
    if script_args.model_name_or_path:
        kwargs = {"attn_implementation": script_args.attn_implementation} if script_args.attn_implementation else {}
        model = AutoModelForCausalLM.from_pretrained(script_args.model_name_or_path, **kwargs)
    else:
        config = GPT2Config(vocab_size=script_args.vocab_size, n_positions=512, n_embd=64, n_layer=2, n_head=2)
        if script_args.attn_implementation:
            config._attn_implementation = script_args.attn_implementation
        model = GPT2LMHeadModel(config)
    dataset = build_dataset(script_args)
    train_dataset = dataset
    eval_dataset = dataset.select(range(min(32, len(dataset)))) if len(dataset) else None
    if script_args.failure in ("worker-sigbus", "worker-sigkill"):
        train_dataset = _SignalledDataset(dataset, script_args)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        data_collator=Collator(script_args),
        callbacks=[FailureInjector(script_args)],
    )
    trainer.train()
    trainer.save_model()


class _SignalledDataset(torch.utils.data.Dataset):
    """A dataset whose item fetch, in a DataLoader worker, is killed by a signal (shm exhaustion, OOM killer)."""

    def __init__(self, dataset: Dataset, args: ScriptArguments) -> None:
        self.dataset = dataset
        self.args = args
        self.fetched = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        self.fetched += 1
        worker = torch.utils.data.get_worker_info()
        if worker is not None and self.fetched > self.args.failure_step:
            os.kill(os.getpid(), signal.SIGBUS if self.args.failure == "worker-sigbus" else signal.SIGKILL)
        return self.dataset[index]


if __name__ == "__main__":
    main()
