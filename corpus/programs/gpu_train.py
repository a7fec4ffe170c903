"""A small causal-LM run on a GPU with the Hugging Face Trainer (or Lightning), with switches that make it fail.

The failures are the GPU's own: a batch or sequence that does not fit, token ids past the embedding,
fp16 at a learning rate that diverges, a model too large to place on the card. Needs no dataset
library and no download.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import (
    HfArgumentParser,
    Qwen2Config,
    Qwen2ForCausalLM,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)


@dataclass
class ScriptArguments:
    max_length: int = field(default=256)
    vocab_size: int = field(default=32000)
    hidden_size: int = field(default=512)
    num_hidden_layers: int = field(default=4)
    num_samples: int = field(default=4096)
    attn_implementation: str = field(default="sdpa")
    failure: str = field(default="none")
    failure_step: int = field(default=10)
    torch_dtype: str = field(default="float32")


class TokenDataset(torch.utils.data.Dataset):
    def __init__(self, args: ScriptArguments, *, long_from: int | None = None) -> None:
        self.args = args
        self.long_from = long_from

    def __len__(self) -> int:
        return self.args.num_samples

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        length = self.args.max_length
        ids = torch.randint(0, self.args.vocab_size, (length,), generator=generator)
        if self.args.failure == "token-out-of-vocab" and self.long_from is not None and index >= self.long_from:
            ids[5] = self.args.vocab_size + 100
        return {"input_ids": ids, "labels": ids.clone()}


class GrowingBatch(TrainerCallback):
    """Sequence-length warmup: from failure_step on, batches are sixteen times longer."""

    def __init__(self, collator: Collator, args: ScriptArguments) -> None:
        self.collator, self.args = collator, args

    def on_step_begin(self, training_args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step >= self.args.failure_step:
            if self.args.failure == "seq-warmup-oom":
                self.collator.repeat = 64
            elif self.args.failure == "label-out-of-range":
                self.collator.bad_label = self.args.vocab_size + 5


class Collator:
    def __init__(self) -> None:
        self.repeat = 1
        self.bad_label: int | None = None

    def __call__(self, features: list[dict]) -> dict:
        ids = torch.stack([feature["input_ids"] for feature in features]).repeat(1, self.repeat)
        labels = ids.clone()
        if self.bad_label is not None:
            labels[:, -3] = self.bad_label
        return {"input_ids": ids, "labels": labels}


def main() -> None:
    script_args, training_args = HfArgumentParser((ScriptArguments, TrainingArguments)).parse_args_into_dataclasses()
    config = Qwen2Config(vocab_size=script_args.vocab_size, hidden_size=script_args.hidden_size,
                         intermediate_size=script_args.hidden_size * 4, num_hidden_layers=script_args.num_hidden_layers,
                         num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=1 << 20)
    config._attn_implementation = script_args.attn_implementation
    dtype = getattr(torch, script_args.torch_dtype)
    print(f"Loading model Qwen2ForCausalLM ({script_args.num_hidden_layers} layers, hidden {script_args.hidden_size})")
    if script_args.failure == "build-on-gpu":
        with torch.device("cuda"):
            model = Qwen2ForCausalLM(config).to(dtype)
    else:
        model = Qwen2ForCausalLM(config).to(dtype)
    print(f"Model parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M")
    if script_args.failure == "load-oom":
        model = model.to("cuda")
        torch.empty((1 << 36,), dtype=torch.float32, device="cuda")  # the optimizer state of a model this size
    collator = Collator()
    long_from = script_args.failure_step * training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=TokenDataset(script_args, long_from=long_from),
        eval_dataset=TokenDataset(ScriptArguments(**{**script_args.__dict__, "num_samples": 512})),
        data_collator=collator,
        callbacks=[GrowingBatch(collator, script_args)],
    )
    trainer.train()
    trainer.save_model()


if __name__ == "__main__":
    main()
