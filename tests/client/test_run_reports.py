"""`trainwreck run` with TRAINWRECK_URL set: failed runs reach the server, and the spool empties once it is back."""

from __future__ import annotations

from collections.abc import Callable

from client_harness import TrainwreckCommand, api_get
from fastapi import FastAPI
from server_support import LiveServer

Program = Callable[[str], list[str]]


def test_a_failed_run_is_submitted_with_its_exit_status_and_job(
    trainwreck: TrainwreckCommand, live_server: LiveServer, program: Program
) -> None:
    trainwreck.settings["url"] = live_server.url

    result = trainwreck.run("run", "--team", "speech", "--job-id", "31337", "--", *program("oom_after_progress"))

    assert result.returncode == 1
    items = api_get(live_server.url, "/api/v1/diagnoses", team="speech")["items"]
    assert len(items) == 1, result.stderr.decode()
    [stored] = items
    assert (stored["job_id"], stored["exit_code"], stored["category"]) == ("31337", 1, "gpu_oom")
    assert f"The GPU ran out of memory\n{stored['url']}\n".encode() in result.stderr
    [log] = trainwreck.run_logs()
    assert result.stderr.endswith(f"trainwreck: log kept at {log}\n".encode())


def test_a_run_while_the_server_is_down_is_spooled_and_the_next_run_sends_it(
    trainwreck: TrainwreckCommand, make_app: Callable[..., FastAPI], program: Program
) -> None:
    server = LiveServer(make_app())  # its port is taken but nothing answers until it starts
    trainwreck.settings.update(url=server.url, submit_attempts="2")

    failed = trainwreck.run("run", "--job-id", "1", "--", *program("oom_after_progress"))

    assert failed.returncode == 1
    assert b"[gpu_oom]" in failed.stderr
    assert b"Connection refused" in failed.stderr
    [spooled] = trainwreck.spooled_logs()
    [log] = trainwreck.run_logs()
    assert spooled.read_bytes() == log.read_bytes()

    server.start()
    try:
        succeeded = trainwreck.run("run", "--job-id", "2", "--", *program("succeeds"))
        stored = api_get(server.url, "/api/v1/diagnoses")["items"]
    finally:
        server.stop()
    assert succeeded.returncode == 0
    assert [(item["job_id"], item["exit_code"]) for item in stored] == [("1", 1)]
    assert trainwreck.spooled_logs() == []
    assert [path.name for path in trainwreck.run_logs()] == [log.name]  # a run that succeeds leaves no log


def test_a_failed_run_without_a_server_says_it_was_not_submitted(
    trainwreck: TrainwreckCommand, program: Program
) -> None:
    result = trainwreck.run("run", "--", *program("oom_after_progress"))

    assert result.returncode == 1
    assert result.stderr.count(b"trainwreck: not submitted: TRAINWRECK_URL is not set\n") == 1
