"""Write a tiny randomly initialised Qwen2 causal LM with a word-level tokenizer, so runs need no download."""

from __future__ import annotations

import sys
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def main(target: Path) -> None:
    words = [f"w{index}" for index in range(400)] + list("abcdefghijklmnopqrstuvwxyz0123456789.,:!?'\"()[]{}<>=-+*/_\n ")
    vocab = {token: index for index, token in enumerate([*SPECIAL, "<unk>", "user", "assistant", "system", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", bos_token=None)
    fast.chat_template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    config = Qwen2Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"], bos_token_id=None,
                         tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(target)
    fast.save_pretrained(target)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
