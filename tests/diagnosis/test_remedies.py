"""Remedies applied to the run's own launch command."""

from __future__ import annotations

from app.diagnosis.engine import Diagnoser
from app.diagnosis.model import Remedy
from app.diagnosis.remedies import corrected_command


def _halve_batch() -> list[Remedy]:
    return [Remedy(parameter="per_device_train_batch_size", current=2, suggested=1, why="smaller batch")]


def test_yaml_config_command_gets_key_value_overrides() -> None:
    command = "accelerate launch --config_file fsdp.yaml src/train.py examples/llama3_full_sft.yaml"
    assert corrected_command(command, _halve_batch()) == f"{command} per_device_train_batch_size=1"


def test_yaml_config_override_already_given_is_changed_in_place() -> None:
    command = "llamafactory-cli train sft.yaml per_device_train_batch_size=2 learning_rate=1e-5"
    fixed = "llamafactory-cli train sft.yaml per_device_train_batch_size=1 learning_rate=1e-5"
    assert corrected_command(command, _halve_batch()) == fixed


def test_yaml_given_as_a_flag_value_keeps_dashed_flags() -> None:
    command = "deepspeed train.py --deepspeed_config ds.yaml --lr 1e-5"
    assert corrected_command(command, _halve_batch()) == f"{command} --per_device_train_batch_size 1"


def test_oom_on_flash_attention_is_not_told_to_switch_to_sdpa(diagnoser: Diagnoser) -> None:
    log = (
        b"swift sft --model Qwen/Qwen2.5-7B-Instruct --attn_impl flash_attn --max_length 8192\n"
        b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        b"79.15 GiB of which 1.2 GiB is free.\n"
    )
    parameters = [remedy.parameter for remedy in diagnoser.diagnose(log).remedies]
    assert "max_length" in parameters
    assert "attn_impl" not in parameters


def test_setting_the_log_does_not_show_is_named_the_frameworks_way(diagnoser: Diagnoser) -> None:
    log = (
        b"llamafactory-cli train sft.yaml\n"
        b"[INFO|2025-06-01 13:00:01] llamafactory.hparams.parser:406 >> Process rank: 0, world size: 1\n"
        b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        b"79.15 GiB of which 1.2 GiB is free.\n"
    )
    parameters = [remedy.parameter for remedy in diagnoser.diagnose(log).remedies]
    assert "flash_attn" in parameters
    assert "cutoff_len" in parameters
    assert "attn_implementation" not in parameters


def test_a_repeated_flag_is_set_once_in_the_corrected_command() -> None:
    command = "swift sft --max_length 256 --model m --per_device_train_batch_size 2 --max_length 8192"
    remedies = [Remedy(parameter="max_length", current=8192, suggested=4096, why="w")]
    fixed = "swift sft --model m --per_device_train_batch_size 2 --max_length 4096"
    assert corrected_command(command, remedies) == fixed
