"""Launch commands read as the shell splits them, and edited without disturbing the rest."""

from __future__ import annotations

import pytest

from app.diagnosis.command import REMOVE, command_from_script, edit_command, read_command


def test_environment_words_program_entry_and_flags() -> None:
    command = read_command(
        "NPROC_PER_NODE=8 CUDA_VISIBLE_DEVICES=0,1 swift sft --model Qwen/Qwen2.5-7B-Instruct "
        "--dataset 'AI-ModelScope/alpaca#500' other/set --lr=1e-4 --bf16 --max_length 2048"
    )
    assert command.env == {"NPROC_PER_NODE": "8", "CUDA_VISIBLE_DEVICES": "0,1"}
    assert command.entry == "swift sft"
    assert command.parameters == {
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "dataset": ["AI-ModelScope/alpaca#500", "other/set"],
        "lr": 1e-4,
        "bf16": True,
        "max_length": 2048,
    }


def test_a_launcher_keeps_its_script_out_of_the_flag_values() -> None:
    command = read_command("torchrun --standalone --nproc_per_node 4 train.py --deepspeed ds.json --output_dir out")
    assert command.program == "torchrun"
    assert command.entry == "train.py"
    assert command.parameters["standalone"] is True
    assert command.parameters["nproc_per_node"] == 4
    assert command.config_files == ["ds.json"]


def test_config_files_and_overrides() -> None:
    command = read_command("llamafactory-cli train examples/qwen_lora.yaml learning_rate=5e-5 trainer.devices=2")
    assert command.entry == "llamafactory-cli train"
    assert command.config_files == ["examples/qwen_lora.yaml"]
    assert command.parameters == {"learning_rate": 5e-5, "trainer.devices": 2}


def test_python_module_and_negative_numbers() -> None:
    command = read_command("python -m torch.distributed.run --nproc_per_node 2 train.py --max_steps -1 --seed 7")
    assert command.entry == "-m torch.distributed.run"
    assert command.parameters["max_steps"] == -1


def test_a_cut_line_with_an_open_quote_is_still_read() -> None:
    command = read_command("swift sft --model Qwen/Qwen2.5-7B --system 'You are")
    assert command.parameters["model"] == "Qwen/Qwen2.5-7B"


def test_edits_keep_each_flag_in_its_place() -> None:
    text = ("NPROC_PER_NODE=8 swift sft --model m --device_map auto --per_device_train_batch_size 4 --lr=1e-4 "
            "--dataset a b")
    edited = edit_command(text, {"device_map": REMOVE, "per_device_train_batch_size": 2, "lr": 5e-5,
                                 "NPROC_PER_NODE": 4, "gradient_accumulation_steps": 16, "dataset": ["a#10", "b#10"]})
    assert edited == ("NPROC_PER_NODE=4 swift sft --model m --per_device_train_batch_size 2 --lr=5e-05 "
                      "--dataset 'a#10' 'b#10' --gradient_accumulation_steps 16")


def test_a_repeated_flag_is_set_once() -> None:
    assert edit_command("python t.py --lr 1 --x 2 --lr 3", {"lr": 0.5}) == "python t.py --lr 0.5 --x 2"


def test_a_command_that_takes_overrides_gets_one() -> None:
    assert edit_command("llamafactory-cli train cfg.yaml", {"max_samples": 10}) == (
        "llamafactory-cli train cfg.yaml max_samples=10")


def test_quoting_survives_a_round_trip() -> None:
    text = "python train.py --fsdp 'full_shard auto_wrap' --run_name \"a b\""
    edited = edit_command(text, {"seed": 1})
    assert read_command(edited).parameters == {"fsdp": "full_shard auto_wrap", "run_name": "a b", "seed": 1}


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("#!/bin/bash\nset -e\nexport NPROC_PER_NODE=4\n# the run\nswift sft \\\n  --model m \\\n  --lr 1e-4\n",
         "NPROC_PER_NODE=4 swift sft    --model m    --lr 1e-4"),
        ("cd /work\nllamafactory-cli train cfg.yaml\n", "llamafactory-cli train cfg.yaml"),
        ("echo hello\nls\n", None),
    ],
)
def test_the_launch_line_of_a_script(script: str, expected: str | None) -> None:
    assert command_from_script(script) == expected
