"""Run facts read from the log: one entry per setting, spelled as the user typed it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.diagnosis.engine import Diagnoser
from app.diagnosis.facts import _DICT_ARG, _SCREENED, FactCollector, FactScreen, HeadLines, _text_without
from app.diagnosis.frameworks import load_framework_set

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


def test_namespaced_cli_flags_answer_for_their_setting(diagnoser: Diagnoser) -> None:
    log = "\n".join([
        "python train.py fit --trainer.precision 16-mixed --trainer.accumulate_grad_batches 2 --data.batch_size 32",
        "Epoch 1:  38%|###8      | 594/1563 [05:21<08:43,  1.85it/s, v_num=3, train_loss=0.981]",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
    ])
    diagnosis = diagnoser.diagnose(log.encode())
    remedies = {remedy.parameter: (remedy.current, remedy.suggested) for remedy in diagnosis.remedies}
    assert remedies["data.batch_size"] == (32, 16)
    assert remedies["trainer.accumulate_grad_batches"] == (2, 4)
    assert diagnosis.corrected_command is not None
    assert "--data.batch_size 16" in diagnosis.corrected_command
    assert "--trainer.accumulate_grad_batches 4" in diagnosis.corrected_command
    assert diagnosis.run["parameters"]["data.batch_size"] == 32


def _facts(text: str, known: tuple[str, ...] = ()) -> dict[str, object]:
    collector = FactCollector(frozenset(known))
    collector.feed((text + "\n").encode())
    return collector.finish().parameters


def test_deepspeed_json_config_values_are_read() -> None:
    config = '[INFO] DeepSpeed config: {\n  "train_micro_batch_size_per_gpu": 4,\n  "gradient_clipping": 1.0\n}'
    parameters = _facts(config)
    assert parameters["train_micro_batch_size_per_gpu"] == 4
    assert parameters["gradient_clipping"] == 1.0


def test_pasted_yaml_keys_count_only_for_known_parameters() -> None:
    parameters = _facts("cutoff_len: 1024\nrank: 0\nPython version: 3.10", known=("cutoff_len", "max_length"))
    assert parameters == {"cutoff_len": 1024}


def test_values_quoted_in_error_messages_are_not_settings() -> None:
    parameters = _facts("ValueError: DeepSpeed ZeRO-3 is not compatible with low_cpu_mem_usage=True")
    assert "low_cpu_mem_usage" not in parameters


def test_source_lines_quoted_in_rank_prefixed_tracebacks_are_not_settings() -> None:
    traceback = (
        '[rank0]:   File "/src/llamafactory/train/sft/workflow.py", line 96, in run_sft\n'
        "[rank0]:     train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)\n"
        "[rank0]: torch.OutOfMemoryError: CUDA out of memory.\n"
    )
    assert "resume_from_checkpoint" not in _facts(traceback)


def test_corrected_command_does_not_append_flags_the_run_never_showed(diagnoser: Diagnoser) -> None:
    log = (
        b"torchrun --nproc_per_node 8 pretrain_gpt.py --micro-batch-size 4 --seq-length 4096\n"
        b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        b"79.15 GiB of which 1.2 GiB is free.\n"
    )
    command = diagnoser.diagnose(log).corrected_command
    assert command is not None
    assert "--micro-batch-size 2" in command
    assert "attn_implementation" not in command
    assert "gradient_checkpointing" not in command


def test_rank_prefixed_argument_dumps_are_read() -> None:
    dump = "\n".join(f"[rank0]:{line}" for line in MEGATRON_DUMP.splitlines())
    parameters = _facts(dump + "\n[rank0]:[INFO:swift] max_length: 2048\n[rank1]:gradient_accumulation_steps=8,")
    assert parameters == {"micro_batch_size": 4, "seq_length": 4096, "train_iters": 5000, "max_length": 2048,
                          "gradient_accumulation_steps": 8}


def test_settings_on_progress_lines_and_after_the_head_are_not_read() -> None:
    collector = FactCollector()
    collector.feed(b"{'loss': 2.1, 'learning_rate': 4e-05, 'epoch': 0.1}\nper_device_train_batch_size=4\n")
    collector.feed(b"x" * (2 << 20) + b"\n")
    collector.feed(b"max_length=512\n")
    assert collector.finish().parameters == {"per_device_train_batch_size": 4}


def test_a_framework_mark_on_every_line_is_reported_once_and_still_recognised() -> None:
    frameworks = load_framework_set()
    screen = FactScreen(frameworks.frameworks)
    ours = next(rank for rank, framework in enumerate(screen.frameworks) if framework.id == "transformers")
    head = b"".join(b"{'loss': %d.5, 'grad_norm': 0.3, 'learning_rate': 2e-05, 'epoch': 0.1}\n" % step
                    for step in range(2000))

    lines = screen.lines(head)

    assert lines.marks[ours].count(b"\n") == 1
    collector = FactCollector(screen=screen)
    collector.feed(head)
    assert collector.finish().framework == "transformers"


# what loss dicts and settings dicts are made of, with keys that are `loss` or nearly
DICT_FRAGMENTS = ["'loss'", "'los'", "'lossy'", "'l'", "'lo'", "'loss_type'", "'lr'", "'eval_loss'", ": ", ":", "2.1",
                  "'x'", "{", "}", ", ", "'", "l", "o", "s", "ss'", "Train:  45%|", "'loss", "loss'", "\"loss\"", " "]


@pytest.fixture(scope="module")
def bare_screen() -> FactScreen:
    return FactScreen(())


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(DICT_FRAGMENTS), max_size=14).map("".join))
def test_the_dict_argument_screen_misses_no_line_that_states_settings(bare_screen: FactScreen, line: str) -> None:
    """The screen leaves out loss dicts' lines by its own form of the pattern: never a line whose dict arguments
    are read when every line is looked at."""
    text = line.encode() + b"\n"
    every_line = HeadLines(text, [[len(text) - 1]] * len(_SCREENED), [])

    screened = bare_screen.lines(text)

    if _DICT_ARG.search(every_line.settings(_DICT_ARG)):
        assert screened.settings(_DICT_ARG) == text


def test_a_loss_dict_every_step_is_not_screened_for_settings_but_a_settings_dict_is(bare_screen: FactScreen) -> None:
    loss_lines = b"".join(b"{'loss': %d.5, 'grad_norm': 0.3, 'learning_rate': 2e-05, 'epoch': 0.1}\n" % step
                          for step in range(500))
    settings_line = b"trainer config {'per_device_train_batch_size': 4, 'loss_type': 'sigmoid'}\n"

    lines = bare_screen.lines(loss_lines + settings_line + loss_lines)

    assert lines.settings(_DICT_ARG) == settings_line
    collector = FactCollector()
    collector.feed(loss_lines + settings_line + loss_lines)
    assert collector.finish().parameters == {"per_device_train_batch_size": 4, "loss_type": "sigmoid"}


def test_text_without_a_literal_is_refused_where_the_literal_overlaps_itself() -> None:
    with pytest.raises(ValueError, match="recurs"):
        _text_without(b"abab")
