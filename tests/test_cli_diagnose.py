"""`trainwreck diagnose` and `trainwreck eval` as a user runs them: a real subprocess."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

OOM_LOG = (
    b"{'loss': 1.9, 'grad_norm': 0.4, 'learning_rate': 1e-05, 'epoch': 0.5}\n"
    b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of "
    b"23.65 GiB of which 3.06 MiB is free.\n"
)


def _trainwreck(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], input=stdin, capture_output=True, timeout=120, env=env, check=False
    )


def test_diagnose_prints_a_report(tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    log.write_bytes(OOM_LOG)
    result = _trainwreck("diagnose", str(log))
    assert result.returncode == 0, result.stderr
    assert b"gpu_oom" in result.stdout
    assert b"Evidence" in result.stdout


def test_diagnose_json_from_gzip_on_stdin() -> None:
    result = _trainwreck("diagnose", "-", "--json", stdin=gzip.compress(OOM_LOG))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["category"] == "gpu_oom"


def test_diagnose_unknown_log_still_exits_zero(tmp_path: Path) -> None:
    log = tmp_path / "quiet.log"
    log.write_bytes(b"all good so far\n")
    result = _trainwreck("diagnose", str(log), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["category"] == "unknown"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (gzip.compress(b"x" * 100_000)[:-20], b"truncated gzip"),
        (bytes(range(256)) * 100, b"binary"),
    ],
)
def test_unreadable_input_is_one_line_on_stderr_and_exit_2(tmp_path: Path, content: bytes, message: bytes) -> None:
    log = tmp_path / "bad.log"
    log.write_bytes(content)
    result = _trainwreck("diagnose", str(log))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count(b"\n") == 1
    assert b"Traceback" not in result.stderr


def test_missing_file_and_bad_usage_exit_2() -> None:
    missing = _trainwreck("diagnose", "/nonexistent/crash.log")
    assert missing.returncode == 2 and missing.stderr.startswith(b"trainwreck: ")
    usage = _trainwreck("diagnose", "x.log", "--exit-code", "nine")
    assert usage.returncode == 2 and usage.stderr.count(b"\n") == 1


def test_exit_code_option_is_evidence(tmp_path: Path) -> None:
    log = tmp_path / "stopped.log"
    log.write_bytes(b"".join(b" %d%%|#  | %d/1000 [00:01<00:10, 9.0it/s]\n" % (n // 10, n) for n in range(10, 300, 10)))
    result = _trainwreck("diagnose", str(log), "--json", "--exit-code", "137")
    assert json.loads(result.stdout)["category"] == "host_oom"


def test_eval_prints_accuracy_and_misses(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(OOM_LOG)
    (tmp_path / "labels.jsonl").write_text(
        json.dumps({"id": "a", "file": "a.log", "category": "gpu_oom", "stage": "mid_run", "step": None,
                    "remedy_params": ["per_device_train_batch_size"]}) + "\n"
    )
    result = _trainwreck("eval", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert b"category  100.0%" in result.stdout


def test_a_trainer_of_our_own_is_taught_by_one_framework_file(tmp_path: Path) -> None:
    frameworks = tmp_path / "frameworks"
    frameworks.mkdir()
    (frameworks / "ourtrainer.yaml").write_text(
        "id: ourtrainer\ntitle: Our trainer\nprecedence: 95\nrecognise: ['ourtrainer\\.run']\n"
        "steps:\n  - name: upd\n    pattern: '\\bupd#(?P<step>\\d+) of (?P<total>\\d+)'\n"
        "    samples: [{line: 'upd#42 of 900 l=0.1', step: 42, total: 900}]\n"
    )
    log = tmp_path / "crash.log"
    log.write_bytes(b"ourtrainer.run starting\n" + b"".join(b"upd#%d of 900 l=2.1\n" % step for step in range(1, 641))
                    + OOM_LOG.split(b"\n", 1)[1])
    without = json.loads(_trainwreck("diagnose", str(log), "--json").stdout)
    result = _trainwreck("diagnose", str(log), "--json", "--frameworks", str(frameworks))
    diagnosis = json.loads(result.stdout)
    assert without["step"] is None and without["stage"] == "unknown"
    assert (diagnosis["stage"], diagnosis["step"], diagnosis["total_steps"]) == ("mid_run", 640, 900)
    assert diagnosis["run"]["framework"] == "ourtrainer"


@pytest.mark.parametrize("text", ["id: bad\ntitle: t\nprecedence: 5\nsteps: 3\n", "id: bad\ntitle: a: b: c\n"])
def test_a_broken_framework_file_is_one_line_and_exit_2(tmp_path: Path, text: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    log = tmp_path / "crash.log"
    log.write_bytes(OOM_LOG)
    result = _trainwreck("diagnose", str(log), "--frameworks", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1 and "bad.yaml" in result.stderr.decode()


def test_bare_trainwreck_prints_its_usage_and_commands() -> None:
    result = _trainwreck()
    assert result.returncode == 0
    assert b"usage:" in result.stdout and b"diagnose" in result.stdout and b"serve" in result.stdout


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    result = _trainwreck("diagnose", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.decode().strip() == f"trainwreck: {tmp_path} is a directory: give the path of a log file"


def test_an_empty_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_bytes(b"\n\n")
    result = _trainwreck("diagnose", str(log))
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1 and "empty" in result.stderr.decode()


def test_the_report_wraps_to_a_narrow_terminal() -> None:
    from app.diagnosis.engine import Diagnoser
    from app.diagnosis.signatures import load_signature_set
    from app.report import render_report

    diagnosis = Diagnoser(load_signature_set()).diagnose(OOM_LOG)
    lines = render_report(diagnosis, width=60).splitlines()
    summary = lines[lines.index("") + 1 : lines.index("What to change:")]
    assert summary and max(len(line) for line in summary) <= 60
    wide = render_report(diagnosis).splitlines()
    assert max(len(line) for line in wide[wide.index("") + 1 : wide.index("What to change:")]) > 60


def test_eval_with_check_says_which_crashes_the_check_would_have_foreseen(tmp_path: Path) -> None:
    log = tmp_path / "nan.log"
    log.write_bytes(
        b"run sh: `swift sft --model Qwen/Qwen2.5-0.5B --tuner_type full --learning_rate 50 --dataset d.jsonl`\n"
        b"{'loss': 'nan', 'grad_norm': 'nan', 'learning_rate': '50', 'global_step/max_steps': '3/60'}\n"
        b"ValueError: loss is NaN at step 3\n"
    )
    (tmp_path / "labels.jsonl").write_text(json.dumps(
        {"id": "nan-lr", "file": "nan.log", "category": "nan_loss", "stage": "early", "step": 3}) + "\n")
    result = _trainwreck("eval", str(tmp_path), "--check")
    assert result.returncode == 0, result.stderr
    assert b"(1/1 logs that show their command" in result.stdout
    assert b"foreseen nan-lr: nan_loss" in result.stdout
