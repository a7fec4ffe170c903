"""`trainwreck run` with TRAINWRECK_URL set: failed runs reach the server, and the spool empties once it is back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from client_harness import ServerProcess, TrainwreckCommand, free_port

Program = Callable[[str], list[str]]


def test_a_failed_run_is_submitted_with_its_exit_status_and_job(
    trainwreck: TrainwreckCommand, server: ServerProcess, program: Program
) -> None:
    trainwreck.settings["url"] = server.url

    result = trainwreck.run("run", "--team", "speech", "--job-id", "31337", "--", *program("oom_after_progress"))

    assert result.returncode == 1
    [stored] = server.get("/api/v1/diagnoses", team="speech")["items"]
    assert (stored["job_id"], stored["exit_code"], stored["category"]) == ("31337", 1, "gpu_oom")
    assert f"The GPU ran out of memory\n{stored['url']}\n".encode() in result.stderr
    [log] = trainwreck.run_logs()
    assert result.stderr.endswith(f"trainwreck: log kept at {log}\n".encode())


def test_a_run_while_the_server_is_down_is_spooled_and_the_next_run_sends_it(
    trainwreck: TrainwreckCommand, program: Program, tmp_path: Path
) -> None:
    port = free_port()
    trainwreck.settings.update(url=f"http://127.0.0.1:{port}", submit_attempts="2")

    failed = trainwreck.run("run", "--job-id", "1", "--", *program("oom_after_progress"))

    assert failed.returncode == 1
    assert b"[gpu_oom]" in failed.stderr
    assert b"Connection refused" in failed.stderr
    [spooled] = trainwreck.spooled_logs()
    [log] = trainwreck.run_logs()
    assert spooled.read_bytes() == log.read_bytes()

    server = ServerProcess(TrainwreckCommand(tmp_path / "server"), port=port)
    server.start()
    try:
        succeeded = trainwreck.run("run", "--job-id", "2", "--", *program("succeeds"))
        stored = server.get("/api/v1/diagnoses")["items"]
    finally:
        server.stop()
    assert succeeded.returncode == 0
    assert [(item["job_id"], item["exit_code"]) for item in stored] == [("1", 1)]
    assert trainwreck.spooled_logs() == []
    assert len(trainwreck.run_logs()) == 2
