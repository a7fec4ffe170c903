"""`trainwreck run` wrapping real training-like programs, as a job script would use it."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from client_harness import TrainwreckCommand

Program = Callable[[str], list[str]]


def test_a_failing_run_passes_output_through_keeps_the_log_and_prints_the_report(
    trainwreck: TrainwreckCommand, program: Program
) -> None:
    result = trainwreck.run("run", "--job-id", "4242", "--", *program("oom_after_progress"))

    assert result.returncode == 1
    assert b"per_device_train_batch_size=4" in result.stdout
    assert b"\rTrain:  20%|##        | 2/10" in result.stderr
    [log] = trainwreck.run_logs()
    assert log.name.endswith("-4242.log")
    logged = log.read_bytes()
    header, rest = logged.split(b"\n", 1)
    assert header.startswith(b"$ ") and header.endswith(b"oom_after_progress.py")
    assert rest.startswith(b"[INFO:swift] args: per_device_train_batch_size=4")
    assert b"\rTrain:  10%|#         | 1/10 [00:01<00:09]\rTrain:  20%" in logged
    assert logged.endswith(b"79.15 GiB of which 1.02 GiB is free.\n")
    assert b"[gpu_oom]" in result.stderr
    assert b"per_device_train_batch_size 4 \xe2\x86\x92 2" in result.stderr
    assert result.stderr.endswith(f"trainwreck: log kept at {log}\n".encode())


def test_a_successful_run_keeps_no_log_and_prints_no_report(trainwreck: TrainwreckCommand, program: Program) -> None:
    result = trainwreck.run("run", "--", *program("succeeds"))

    assert result.returncode == 0
    assert result.stdout == b"step 1/2 loss 1.0\nstep 2/2 loss 0.5\nsaved model to output/\n"
    assert trainwreck.run_logs() == []
    assert b"Where:" not in result.stderr and b"log kept" not in result.stderr


def test_keep_log_keeps_a_successful_runs_log_of_both_streams(trainwreck: TrainwreckCommand, program: Program) -> None:
    result = trainwreck.run("run", "--keep-log", "--", *program("succeeds"))

    assert result.returncode == 0
    assert result.stdout == b"step 1/2 loss 1.0\nstep 2/2 loss 0.5\nsaved model to output/\n"
    assert result.stderr.startswith(b"warning: nothing to worry about\n")
    [log] = trainwreck.run_logs()
    header, rest = log.read_bytes().split(b"\n", 1)
    assert header.startswith(b"$ ")
    assert sorted(rest.splitlines()) == sorted((result.stdout + b"warning: nothing to worry about\n").splitlines())
    assert b"Where:" not in result.stderr
    assert log.name.endswith("-python3-succeeds.log") or "-python" in log.name


def test_the_exit_status_is_the_commands_own(trainwreck: TrainwreckCommand, program: Program) -> None:
    result = trainwreck.run("run", "--", *program("reports_terminal"))

    assert result.returncode == 3
    assert b"stdout tty: False, stderr tty: False" in result.stdout


@pytest.mark.parametrize(("signum", "exit_status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_trainwreck_reaches_the_command_and_sets_the_exit_status_like_a_shell(
    trainwreck: TrainwreckCommand, program: Program, signum: int, exit_status: int
) -> None:
    process = trainwreck.start(
        "run", "--", *program("waits_for_signal"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"

    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == exit_status
    [log] = trainwreck.run_logs()
    assert log.read_bytes().split(b"\n", 1)[1].startswith(b"ready\n")
    assert b"finished without being stopped" not in log.read_bytes()
    assert f"trainwreck: log kept at {log}".encode() in stderr


def test_a_command_that_does_not_exist_exits_127_with_the_reason_in_the_log(trainwreck: TrainwreckCommand) -> None:
    result = trainwreck.run("run", "--", "no-such-training-command")

    assert result.returncode == 127
    assert b"cannot run no-such-training-command: No such file or directory" in result.stderr
    [log] = trainwreck.run_logs()
    assert b"no-such-training-command" in log.read_bytes()


def test_run_without_a_command_is_a_usage_error(trainwreck: TrainwreckCommand) -> None:
    result = trainwreck.run("run", "--team", "vision")

    assert result.returncode == 2
    assert b"no command to run" in result.stderr


@pytest.mark.parametrize(
    ("keys", "exit_status", "expected_output"),
    [(b"hello\n", 3, b"read: hello\n"), (b"\x03", 130, b"KeyboardInterrupt")],
)
def test_on_a_terminal_the_command_gets_a_terminal_and_the_keyboard(
    trainwreck: TrainwreckCommand, program: Program, keys: bytes, exit_status: int, expected_output: bytes
) -> None:
    controller, terminal = os.openpty()
    process = trainwreck.start(
        "run",
        "--",
        *program("reports_terminal"),
        "read",
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
        preexec_fn=_take_controlling_terminal,
    )
    os.close(terminal)
    try:
        seen = _read_until(controller, b"100%\r\n")  # this terminal turns \n into \r\n
        os.write(controller, keys)
        seen += _read_until(controller, None)
        assert process.wait(timeout=30) == exit_status
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()

    assert b"stdout tty: True, stderr tty: True" in seen
    [log] = trainwreck.run_logs()
    logged = log.read_bytes()
    assert b"progress\r50%\r100%\n" in logged  # no newline translation by the pseudo-terminal
    assert expected_output in logged


def _take_controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read_until(fd: int, needle: bytes | None, timeout: float = 30) -> bytes:
    """Read a pseudo-terminal until needle appears (None: until every writer has gone)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle is None or needle not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"timed out waiting for {needle!r}; got {seen!r}"
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the other side has closed
            data = b""
        if not data:
            assert needle is None, f"output ended before {needle!r}; got {seen!r}"
            break
        seen += data
    return seen


def test_without_a_place_for_the_log_nothing_runs(trainwreck: TrainwreckCommand, program: Program) -> None:
    trainwreck.data_dir.parent.mkdir(parents=True, exist_ok=True)
    trainwreck.data_dir.write_text("a file where the data directory should be")

    result = trainwreck.run("run", "--", *program("succeeds"))

    assert result.returncode == 2
    assert b"cannot keep the log in" in result.stderr
    assert result.stdout == b""


def test_the_command_is_checked_before_it_runs_and_runs_anyway(trainwreck: TrainwreckCommand, program: Program) -> None:
    result = trainwreck.run("run", "--", *program("succeeds"), "--fp16", "true", "--bf16", "true")

    assert result.returncode == 0
    assert b"fp16 and bf16 both on  [fp16-and-bf16-both-on]" in result.stderr
    assert result.stdout.startswith(b"step 1/2 loss 1.0\n")


def test_strict_refuses_to_launch_a_command_the_check_finds_an_error_in(
    trainwreck: TrainwreckCommand, program: Program
) -> None:
    result = trainwreck.run("run", "--strict", "--", *program("succeeds"), "--fp16", "true", "--bf16", "true")

    assert result.returncode == 1
    assert b"[fp16-and-bf16-both-on]" in result.stderr
    assert b"not launched: the check found errors (--strict)" in result.stderr
    assert result.stdout == b""
    assert trainwreck.run_logs() == []


def test_strict_launches_a_clean_command_and_no_check_skips_the_check(
    trainwreck: TrainwreckCommand, program: Program
) -> None:
    assert trainwreck.run("run", "--strict", "--", *program("succeeds")).returncode == 0
    skipped = trainwreck.run("run", "--no-check", "--", *program("succeeds"), "--fp16", "true", "--bf16", "true")
    assert skipped.returncode == 0
    assert b"fp16-and-bf16-both-on" not in skipped.stderr


def test_a_kept_log_is_redacted(trainwreck: TrainwreckCommand) -> None:
    secret = "hf_" + "abcdefghijklmnopqrstuvwxyzABCDEF12"
    result = trainwreck.run("run", "--", "python3", "-c",
                            f"import sys; print('token {secret} --password hunter2'); sys.exit(4)")

    assert result.returncode == 4
    assert secret.encode() in result.stdout  # the terminal shows what the command printed, as it printed it
    [log] = trainwreck.run_logs()
    kept = log.read_bytes()
    assert secret.encode() not in kept and b"hunter2" not in kept
    assert b"[REDACTED" in kept
    assert oct(log.stat().st_mode & 0o777) == "0o600"


def test_run_logs_are_rotated_by_count_and_size(tmp_path: Path) -> None:
    from app.client.run_logs import rotate

    for number in range(5):
        path = tmp_path / f"2026010{number}-run.log"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1_000_000 + number, 1_000_000 + number))
    removed = rotate(tmp_path, keep=3, max_bytes=10_000)
    assert [path.name for path in removed] == ["20260100-run.log", "20260101-run.log"]
    rotate(tmp_path, keep=10, max_bytes=1500)
    assert [path.name for path in sorted(tmp_path.glob("*.log"))] == ["20260104-run.log"]


def test_redaction_keeps_every_line_of_a_long_log(tmp_path: Path) -> None:
    from app.client import run_logs

    path = tmp_path / "big.log"
    lines = [f"step {number} loss 1.0 api_key=sk-{number:040d}".encode() for number in range(200_000)]
    path.write_bytes(b"\n".join(lines) + b"\n" + b"y" * (9 << 20))  # and a last line longer than a block
    run_logs.redact_in_place(path)
    kept = path.read_bytes().split(b"\n")
    assert len(kept) == len(lines) + 1
    assert all(b"sk-0000" not in line for line in kept[:-1]) and kept[5].startswith(b"step 5 loss 1.0")
    assert len(kept[-1]) == 9 << 20
    assert list(tmp_path.iterdir()) == [path]
