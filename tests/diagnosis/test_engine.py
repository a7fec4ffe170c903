"""diagnose() end to end on small synthetic logs: root cause vs cascade, exit codes, loss, unknowns."""

from __future__ import annotations

import gzip
import json

import pytest

from app.diagnosis.engine import Diagnoser
from app.errors import EmptyLogError

OOM = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 3 has a total capacity of "
    "79.15 GiB of which 1.20 GiB is free. Including non-PyTorch memory, this process has 77.9 GiB memory in use. "
    "Of the allocated memory 70.1 GiB is allocated by PyTorch, and 6.2 GiB is reserved by PyTorch but unallocated."
)


def _hf_bars(last: int, total: int) -> list[str]:
    lines = []
    for step in range(10, last + 1, 10):
        lines.append(f" {step * 100 // total}%|##   | {step}/{total} [01:{step % 60:02d}<10:00,  1.10it/s]\r"
                     f"{{'loss': {2.5 - step / 1000:.4f}, 'grad_norm': 1.2, 'learning_rate': 2e-05, 'epoch': 0.1}}")
    return lines


def _multi_rank_oom_log() -> bytes:
    lines = [
        "torchrun --nproc_per_node 4 train.py --per_device_train_batch_size 4 --gradient_accumulation_steps 8 "
        "--max_length 4096 --bf16 True --output_dir out",
        "[INFO] world_size=4",
        *_hf_bars(850, 1900),
        "[rank3]: Traceback (most recent call last):",
        '[rank3]:   File "/opt/lib/transformers/trainer.py", line 3518, in training_step',
        "[rank3]:     self.accelerator.backward(loss)",
        f"[rank3]: {OOM}",
        "[rank0]:[E1128 10:00:01.000 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: "
        "WorkNCCL(SeqNum=9012, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600012 "
        "milliseconds before timing out.",
        "[rank1]:[E1128 10:00:01.000 ProcessGroupNCCL.cpp:616] [Rank 1] Watchdog caught collective operation timeout: "
        "WorkNCCL(SeqNum=9012, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600013 "
        "milliseconds before timing out.",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        "train.py FAILED",
    ]
    return ("\n".join(lines) + "\n").encode()


def test_first_causal_error_is_the_root_and_the_cascade_its_symptoms(diagnoser: Diagnoser) -> None:
    diagnosis = diagnoser.diagnose(_multi_rank_oom_log())
    assert diagnosis.category == "gpu_oom"
    assert diagnosis.stage == "mid_run"
    assert diagnosis.step is not None and abs(diagnosis.step - 850) <= 10
    assert diagnosis.total_steps == 1900
    assert "nccl_timeout" in {symptom.category for symptom in diagnosis.symptoms}
    assert all(symptom.line > diagnosis.evidence[0].line for symptom in diagnosis.symptoms)
    assert diagnosis.run["world_size"] == 4
    assert diagnosis.run["gpu_memory_gib"] == 79.15


def test_oom_remedy_halves_batch_and_doubles_accumulation(diagnoser: Diagnoser) -> None:
    remedies = {remedy.parameter: remedy for remedy in diagnoser.diagnose(_multi_rank_oom_log()).remedies}
    batch, accumulation = remedies["per_device_train_batch_size"], remedies["gradient_accumulation_steps"]
    assert (batch.current, batch.suggested) == (4, 2)
    assert (accumulation.current, accumulation.suggested) == (8, 16)


def test_corrected_command_applies_the_suggested_values(diagnoser: Diagnoser) -> None:
    command = diagnoser.diagnose(_multi_rank_oom_log()).corrected_command
    assert command is not None
    assert "--per_device_train_batch_size 2" in command
    assert "--gradient_accumulation_steps 16" in command


def test_gzip_log_gives_the_same_diagnosis(diagnoser: Diagnoser) -> None:
    plain = diagnoser.diagnose(_multi_rank_oom_log()).to_dict()
    packed = diagnoser.diagnose(gzip.compress(_multi_rank_oom_log())).to_dict()
    assert plain == packed


def test_log_that_stops_mid_bar_is_host_oom_with_exit_137(diagnoser: Diagnoser) -> None:
    log = ("\n".join(_hf_bars(300, 1000)) + "\n").encode()
    diagnosis = diagnoser.diagnose(log, exit_code=137)
    assert diagnosis.category == "host_oom"
    assert diagnosis.stage == "mid_run"
    assert diagnosis.step == 300


def test_log_that_stops_mid_bar_is_preempted_with_exit_143(diagnoser: Diagnoser) -> None:
    log = ("\n".join(_hf_bars(40, 1000)) + "\n").encode()
    diagnosis = diagnoser.diagnose(log, exit_code=143)
    assert diagnosis.category == "preempted"
    assert diagnosis.stage == "early"


def test_log_that_stops_without_exit_code_is_unknown_but_placed(diagnoser: Diagnoser) -> None:
    diagnosis = diagnoser.diagnose(("\n".join(_hf_bars(400, 1000)) + "\n").encode())
    assert diagnosis.category == "unknown"
    assert diagnosis.step == 400


def test_loss_spike_read_from_the_loss_lines_is_divergence(diagnoser: Diagnoser) -> None:
    values = [1.31, 1.27, 1.25, 1.23, 1.24, 57.1, 999.99]
    lines = [f"step {10 * (index + 1)}/500 | loss {value} | lr 1e-4" for index, value in enumerate(values)]
    diagnosis = diagnoser.diagnose(("\n".join(lines) + "\n").encode())
    assert diagnosis.category == "nan_loss"
    assert diagnosis.stage == "early"
    assert diagnosis.step == 60
    assert any(point.loss == 999.99 for point in diagnosis.loss_curve)


def test_nan_loss_in_trainer_dicts_is_nan_loss_at_its_step(diagnoser: Diagnoser) -> None:
    bars = _hf_bars(120, 1000)
    bars.append(" 13%|##   | 130/1000 [01:10<10:00,  1.10it/s]\r{'loss': nan, 'grad_norm': nan, 'epoch': 0.2}")
    diagnosis = diagnoser.diagnose(("\n".join(bars) + "\n").encode())
    assert diagnosis.category == "nan_loss"
    assert diagnosis.stage == "mid_run"
    assert diagnosis.step is not None and abs(diagnosis.step - 130) <= 10


def test_diagnosis_json_round_trips(diagnoser: Diagnoser) -> None:
    diagnosis = diagnoser.diagnose(_multi_rank_oom_log())
    data = json.loads(json.dumps(diagnosis.to_dict()))
    assert data["category"] == "gpu_oom"
    assert {"category", "stage", "step", "total_steps", "signature", "title", "summary", "confidence", "evidence",
            "symptoms", "remedies", "run", "fingerprint"} <= set(data)


def test_unknown_failure_quotes_the_last_exception_and_groups_repeats(diagnoser: Diagnoser) -> None:
    first = diagnoser.diagnose(b"loading\nFrobnicatorError: widget 17 at 0x7f3a2b failed in /data/run1/x.py\n")
    second = diagnoser.diagnose(b"other\nFrobnicatorError: widget 912 at 0x11ff failed in /srv/run2/y.py\n")
    other = diagnoser.diagnose(b"FrobnicatorError: the flux capacitor is empty\n")
    assert first.category == "unknown"
    assert first.evidence[0].line == 2
    assert first.evidence[0].text.startswith("FrobnicatorError")
    assert first.fingerprint == second.fingerprint != other.fingerprint


@pytest.mark.parametrize("log", [b"", b"\n\n   \n", b"\t\r\n"])
def test_an_empty_log_is_refused_not_diagnosed(diagnoser: Diagnoser, log: bytes) -> None:
    with pytest.raises(EmptyLogError, match="empty"):
        diagnoser.diagnose(log)


def test_secrets_in_evidence_are_redacted(diagnoser: Diagnoser) -> None:
    log = b"HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ\nKeyError: 'hf_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ'\n"
    text = json.dumps(diagnoser.diagnose(log).to_dict())
    assert "hf_abcdefghij" not in text


def test_script_tags_in_log_lines_are_kept_as_text(diagnoser: Diagnoser) -> None:
    diagnosis = diagnoser.diagnose(b"RuntimeError: <script>alert(1)</script>\n")
    assert diagnosis.evidence[0].text == "RuntimeError: <script>alert(1)</script>"


def test_corrected_command_shows_swift_entry_point_with_launcher_settings_as_env(diagnoser: Diagnoser) -> None:
    log = (
        b"run sh: `/usr/bin/python3 -m torch.distributed.run --nproc_per_node 2 --master_port 29533 "
        b"/venv/lib/python3.11/site-packages/swift/cli/sft.py --model m --dataset d.jsonl`\n"
        b"torch.distributed.DistNetworkError: The server socket has failed to listen on any local network address. "
        b"port: 29533, useIpv6: false, code: -98, name: EADDRINUSE, message: address already in use\n"
    )
    diagnosis = diagnoser.diagnose(log)
    assert diagnosis.category == "distributed_config"
    assert diagnosis.corrected_command is not None
    assert diagnosis.corrected_command.startswith("NPROC_PER_NODE=2 MASTER_PORT=")
    assert "MASTER_PORT=29533" not in diagnosis.corrected_command
    assert " swift sft --model m --dataset d.jsonl" in diagnosis.corrected_command


def test_one_diagnoser_serves_several_threads_at_once(diagnoser: Diagnoser) -> None:
    from concurrent.futures import ThreadPoolExecutor

    log = _multi_rank_oom_log() * 200
    with ThreadPoolExecutor(max_workers=4) as pool:
        categories = list(pool.map(lambda _: diagnoser.diagnose(log).category, range(8)))
    assert categories == ["gpu_oom"] * 8


def test_oom_while_saving_advises_sharded_save_not_a_smaller_batch(diagnoser: Diagnoser) -> None:
    lines = [
        "torchrun --nproc_per_node 4 train.py --per_device_train_batch_size 4 --max_length 4096 --output_dir out",
        *_hf_bars(500, 1000),
        "Saving model checkpoint to out/checkpoint-500",
        OOM,
    ]
    diagnosis = diagnoser.diagnose(("\n".join(lines) + "\n").encode())
    assert (diagnosis.category, diagnosis.stage) == ("gpu_oom", "checkpoint")
    parameters = [remedy.parameter for remedy in diagnosis.remedies]
    assert "stage3_gather_16bit_weights_on_model_save" in parameters
    assert "per_device_train_batch_size" not in parameters
    assert "max_length" not in parameters


def test_an_error_training_went_on_after_is_not_the_root_cause(diagnoser: Diagnoser) -> None:
    lines = [
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        "79.15 GiB of which 1.2 GiB is free.",
        "retrying the batch with half the micro-batch",
        *_hf_bars(600, 1000),
        "Traceback (most recent call last):",
        '  File "/opt/lib/transformers/trainer.py", line 3518, in training_step',
        "KeyError: 'messages'",
    ]
    diagnosis = diagnoser.diagnose(("\n".join(lines) + "\n").encode())
    assert diagnosis.category == "data_error"
    assert diagnosis.step is not None and abs(diagnosis.step - 600) <= 10


def test_a_rank_error_followed_by_a_few_steps_on_other_ranks_stays_the_root(diagnoser: Diagnoser) -> None:
    diagnosis = diagnoser.diagnose(_multi_rank_oom_log())
    assert diagnosis.category == "gpu_oom"


def test_a_failed_save_takes_its_step_from_the_checkpoint_folder(diagnoser: Diagnoser) -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "/opt/lib/transformers/trainer.py", line 3000, in _save_checkpoint',
        "    self.save_model(output_dir)",
        "OSError: [Errno 28] No space left on device: '/scratch/run/checkpoint-600/model.safetensors'",
    ]
    diagnosis = diagnoser.diagnose(("\n".join(lines) + "\n").encode())
    assert (diagnosis.category, diagnosis.stage, diagnosis.step) == ("checkpoint_save_error", "checkpoint", 600)


def test_an_oom_in_eager_attention_puts_the_attention_implementation_first(diagnoser: Diagnoser) -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "/opt/lib/transformers/models/qwen2/modeling_qwen2.py", line 163, in eager_attention_forward',
        "    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 512.00 GiB. GPU 0 has a total capacity of "
        "139.80 GiB of which 64.89 GiB is free.",
    ]
    diagnosis = diagnoser.diagnose(("\n".join(lines) + "\n").encode())
    assert diagnosis.remedies[0].parameter == "attn_implementation"


def test_a_diverged_learning_rate_is_cut_to_the_fields_safe_rate(diagnoser: Diagnoser) -> None:
    lines = ["learning_rate=10.0", "bf16=True"] + [
        f"{{'loss': {loss}, 'learning_rate': 10.0, 'epoch': 0.{step}}}" for step, loss in enumerate((2.1, 1.9, "nan"))
    ]
    diagnosis = diagnoser.diagnose(("\n".join(lines) + "\n").encode())
    assert diagnosis.category == "nan_loss"
    learning_rate = next(remedy for remedy in diagnosis.remedies if remedy.parameter == "learning_rate")
    assert learning_rate.current == 10.0 and learning_rate.suggested == 1e-4


def test_an_error_while_a_module_is_imported_is_setup(diagnoser: Diagnoser) -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "/opt/lib/swift/cli/export.py", line 5, in <module>',
        "    export_main()",
        '  File "/opt/lib/swift/llm/export/export.py", line 39, in run',
        "    from swift.megatron import convert_hf2mcore",
        '  File "/opt/lib/swift/megatron/__init__.py", line 5, in <module>',
        "    from megatron.training import get_args",
        "ModuleNotFoundError: No module named 'megatron.training'",
    ]
    diagnosis = diagnoser.diagnose(("\n".join(lines) + "\n").encode())
    assert (diagnosis.category, diagnosis.stage) == ("environment_error", "load")


def test_preprocessing_lines_before_the_error_show_the_run_was_setting_up(diagnoser: Diagnoser) -> None:
    lines = [
        "[03:11:32] tokenized 50000 documents (seq_len=1024)",
        "[03:11:32] building soft-target cache ...",
        "numpy._core._exceptions._ArrayMemoryError: Unable to allocate 5.96 TiB for an array with shape "
        "(50000, 1024, 32000) and data type float32",
    ]
    diagnosis = diagnoser.diagnose(("\n".join(lines) + "\n").encode())
    assert (diagnosis.category, diagnosis.stage) == ("host_oom", "load")
    assert diagnoser.diagnose((lines[-1] + "\n").encode()).stage == "unknown"
