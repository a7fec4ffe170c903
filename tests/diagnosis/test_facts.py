"""Run facts read from the log: one entry per setting, spelled as the user typed it."""

from __future__ import annotations

import pytest

from app.diagnosis.engine import Diagnoser
from app.diagnosis.facts import FactCollector

MEGATRON_COMMAND = (
    "torchrun --nproc_per_node 8 --master_port 6000 pretrain_gpt.py --tensor-model-parallel-size 2 "
    "--micro-batch-size 4 --global-batch-size 256 --seq-length 4096 --train-iters 5000 --bf16"
)
MEGATRON_DUMP = "\n".join([
    "------------------------ arguments ------------------------",
    "  micro_batch_size ................................ 4",
    "  seq_length ...................................... 4096",
    "  train_iters ..................................... 5000",
    "-------------------- end of arguments ---------------------",
])


@pytest.mark.parametrize("blocks", [[MEGATRON_COMMAND, MEGATRON_DUMP], [MEGATRON_DUMP, MEGATRON_COMMAND]],
                         ids=["command-first", "dump-first"])
def test_command_line_spelling_wins_over_the_argument_dump(blocks: list[str]) -> None:
    collector = FactCollector()
    for block in blocks:
        collector.feed((block + "\n").encode())
    facts = collector.finish()
    assert facts.lookup(["per_device_train_batch_size", "micro_batch_size"]) == ("micro-batch-size", 4)
    assert facts.lookup(["max_steps", "train_iters"]) == ("train-iters", 5000)
    assert "micro_batch_size" not in facts.parameters
    assert facts.to_dict({"micro_batch_size", "seq_length"})["parameters"] == {
        "micro-batch-size": 4, "seq-length": 4096}


def test_argument_dump_alone_gives_its_own_spelling() -> None:
    collector = FactCollector()
    collector.feed((MEGATRON_DUMP + "\n").encode())
    assert collector.finish().lookup(["micro_batch_size"]) == ("micro_batch_size", 4)


def test_corrected_megatron_command_changes_the_dashed_flags_in_place(diagnoser: Diagnoser) -> None:
    log = "\n".join([
        MEGATRON_COMMAND,
        MEGATRON_DUMP,
        " iteration      150/    5000 | consumed samples:        38400 | lm loss: 3.1E+00 | loss scale: 1.0 |",
        "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
    ])
    diagnosis = diagnoser.diagnose(log.encode())
    remedies = {remedy.parameter: (remedy.current, remedy.suggested) for remedy in diagnosis.remedies}
    assert remedies["micro-batch-size"] == (4, 2)
    assert remedies["seq-length"] == (4096, 2048)
    assert diagnosis.corrected_command is not None
    assert "--micro-batch-size 2 " in diagnosis.corrected_command
    assert "--seq-length 2048 " in diagnosis.corrected_command
    assert "micro_batch_size" not in diagnosis.corrected_command
    assert diagnosis.total_steps == 5000
