"""The NaN/Inf gate: blocks with no gate word are scanned without the patterns that always spell one."""

from __future__ import annotations

import pytest
import regex

from app.diagnosis.engine import Diagnoser
from app.diagnosis.matcher import GATE_WHOLE_WORDS, GATE_WORDS, always_spells
from app.diagnosis.signatures import load_signature_set

GATE = regex.compile("(?i)" + "|".join([*GATE_WORDS, *(rf"{word}\b" for word in GATE_WHOLE_WORDS)]))


@pytest.mark.parametrize(("pattern", "spells"), [
    (r"(?i)loss['\"]?[ \t]*[:=][ \t]*(?:tensor\()?['\"]?[-+]?(?:nan|inf(?:inity)?)\b", True),
    (r"(?i)\bloss (?:is|became) (?:nan|inf(?:inite)?|non-finite|not finite)\b", True),
    (r"\bdetected (?:nan|inf|non-finite) (?:loss|gradients?)", True),
    (r"(?P<value>nan)", True),
    (r"inf$", True),
    (r"dataset_info\.json", False),  # `inf` inside a word is no gate word
    (r"inf(?:o)?\b", False),
    (r"loss inf", False),  # may be followed by `o`
    (r"(?:x|nan)", False),  # one branch spells none
    (r"n(?:a|b)n", False),
    (r"loss (?:is )?\w+", False),
    (r"(?:ab)?" * 20 + "nan", False),  # too many ways through to check: assumed not
])
def test_what_always_spells_a_gate_word(pattern: str, spells: bool) -> None:
    assert always_spells(pattern.encode(), GATE_WORDS, GATE_WHOLE_WORDS) is spells


def test_every_sample_a_gated_pattern_matches_holds_a_gate_word() -> None:
    gated = 0
    for signature in load_signature_set().signatures:
        for compiled in signature.compiled:
            if not always_spells(compiled.source.encode(), GATE_WORDS, GATE_WHOLE_WORDS):
                continue
            gated += 1
            for sample in signature.spec.samples.match:
                if compiled.compiled.search(sample.encode()):
                    assert GATE.search(sample), (signature.id, compiled.source, sample)
    assert gated >= 10  # the loss-nan patterns at least


@pytest.mark.parametrize("filler", [
    b"{'loss': 1.25, 'grad_norm': 0.8, 'learning_rate': 1e-05, 'epoch': 0.1}\n",  # no gate word: gated scan
    b"node-1:40:40 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/IPC\n",  # INFO on every line: one scan
    b"[INFO:swift] {'loss': 1.25, 'grad_norm': 0.8, 'memory(GiB)': 17.5, 'epoch': 0.1}\n",
])
def test_a_nan_loss_is_found_whatever_fills_its_block(diagnoser: Diagnoser, filler: bytes) -> None:
    log = filler * ((5 << 20) // len(filler)) + b"{'loss': nan, 'grad_norm': nan, 'epoch': 0.2}\n" + filler * 1000
    diagnosis = diagnoser.diagnose(log)
    assert diagnosis.category == "nan_loss"
    assert any("nan" in evidence.text for evidence in diagnosis.evidence)
