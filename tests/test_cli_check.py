"""`trainwreck check` as a user runs it: a real subprocess, the machine given by flags or read here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CONFLICT = ["NPROC_PER_NODE=8", "swift", "sft", "--model", "Qwen/Qwen2.5-7B-Instruct", "--deepspeed", "zero3",
            "--device_map", "auto", "--dataset", "alpaca"]
MACHINE = ["--gpu", "NVIDIA A100-SXM4-80GB", "--gpus", "8", "--host-memory-gib", "1024", "--shm-gib", "512",
           "--disk-free-gib", "8000"]


def _trainwreck(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **(env or {})}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=120,
                          env=environment, cwd=cwd, check=False)


def test_an_error_finding_exits_1_with_the_fix() -> None:
    result = _trainwreck("check", *MACHINE, "--", *CONFLICT)
    assert result.returncode == 1, result.stderr
    assert "[deepspeed-with-device-map]" in result.stdout
    assert "device_map → (remove)" in result.stdout
    assert "Corrected command:\n  NPROC_PER_NODE=8 swift sft --model Qwen/Qwen2.5-7B-Instruct --deepspeed zero3 " \
           "--dataset alpaca" in result.stdout
    assert "Effective batch: 1 per device × 8 GPUs × 1 accumulation = 8" in result.stdout


def test_a_clean_command_exits_0() -> None:
    result = _trainwreck("check", *MACHINE, "--", "NPROC_PER_NODE=8", "swift", "sft", "--model", "Qwen/Qwen2.5-7B",
                         "--deepspeed", "zero2", "--dataset", "alpaca")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout


def test_json_output_and_the_command_as_one_line() -> None:
    result = _trainwreck("check", "--json", *MACHINE, "--command", " ".join(CONFLICT))
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["framework"] == "ms-swift"
    assert data["machine"]["gpus"] == 8 and data["machine"]["sources"]["gpus"] == "given"
    assert [finding["rule"] for finding in data["findings"]] == ["deepspeed-with-device-map"]
    assert "--max_steps 10" in data["verification_command"] and "alpaca#10" in data["verification_command"]


def test_a_launch_script_and_the_config_files_it_names(tmp_path: Path) -> None:
    (tmp_path / "ds.json").write_text('{"zero_optimization": {"stage": 3}}')
    (tmp_path / "cfg.yaml").write_text("model_name_or_path: Qwen/Qwen2.5-7B-Instruct\nfinetuning_type: lora\n"
                                       "deepspeed: ds.json\ndevice_map: auto\nfp16: true\nbf16: true\n")
    script = tmp_path / "launch.sh"
    script.write_text("#!/bin/sh\nset -e\nllamafactory-cli train \\\n  cfg.yaml\n")
    result = _trainwreck("check", *MACHINE, "--", str(script), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "[deepspeed-with-device-map]" in result.stdout
    assert "[fp16-and-bf16-both-on]" in result.stdout


def test_a_team_rule_folder_from_the_settings(tmp_path: Path) -> None:
    (tmp_path / "no-huge-lr.yaml").write_text(
        "id: no-huge-lr\ntitle: A huge learning rate\nseverity: error\nparameters: [learning_rate]\n"
        "when: 'learning_rate > 0.01'\nmessage: Our runs diverge above 0.01.\nsuggested: {learning_rate: '1e-3'}\n"
        "prevents: [nan_loss]\n"
        "samples: {flag: ['python t.py --lr 0.1'], not_flag: ['python t.py --lr 0.001']}\n")
    result = _trainwreck("check", *MACHINE, "--", "python", "t.py", "--lr", "0.1",
                         env={"TRAINWRECK_RULE_DIRS": str(tmp_path)})
    assert result.returncode == 1
    assert "[no-huge-lr]" in result.stdout and "lr → 0.001" in result.stdout


def test_bad_usage_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (["check"], ["check", "--command", "x", "--", "y"], ["check", "--gpus", "eight", "--", "x"],
                 ["check", "--command", "echo hi\nls"]):
        result = _trainwreck(*args)
        assert result.returncode == 2, args
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("trainwreck: "), result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\n")
    result = _trainwreck("check", "--rules", str(tmp_path), "--", "python", "t.py")
    assert result.returncode == 2 and "broken.yaml" in result.stderr
