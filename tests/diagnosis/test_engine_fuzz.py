"""Arbitrary mixtures of the tokens trainers print never hang or crash a diagnosis (a hang once hid here)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.diagnosis.engine import Diagnoser
from app.diagnosis.taxonomy import categories, stages
from app.errors import UnreadableLogError

TOKENS = [
    "loss", "Loss", "LOSS", "lm loss:", "'loss': ", '"loss": ', "loss=", "nan", "inf", "-inf", "NaN", "1.5",
    "3.2e+4", "0", "999.99", "step", "Step ", "steps: ", "global_step", "'global_step/max_steps': '", "/", "iteration",
    "it ", "Epoch 3: ", "Epoch: [1][", "]", "[", "|", "%|", " 45%|####  | ", "853/1900 [", "\r", "\n", " ", ":", "=",
    "[rank3]: ", "[default0]:", "0: ", "Traceback (most recent call last):", '  File "x.py", line 3, in training_step',
    "RuntimeError: ", "CUDA out of memory. Tried to allocate 2.00 GiB", "Killed", "exitcode  : -9",
    "Watchdog caught collective operation timeout", "Saving model checkpoint to out/checkpoint-100",
    "KeyError: 'messages'",
    "--per_device_train_batch_size 4", "torchrun --nproc_per_node 2 train.py", "hf_" + "a" * 34, "\x1b[31m", "\x00",
]


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TOKENS), max_size=200))
def test_any_mixture_of_trainer_tokens_gives_a_valid_diagnosis(diagnoser: Diagnoser, tokens: list[str]) -> None:
    try:
        diagnosis = diagnoser.diagnose("".join(tokens).encode())
    except UnreadableLogError:
        return  # mostly NUL bytes and escapes: refused as binary, which is a clear answer too
    assert diagnosis.category in categories()
    assert diagnosis.stage in stages()
    assert all(item.line >= 1 for item in diagnosis.evidence)
