"""`trainwreck submit` against the real service on loopback (SQLite and PostgreSQL), a failing gateway, and
no server at all."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from client_harness import FailingGateway, TrainwreckCommand, api_get
from fastapi import FastAPI
from server_support import LiveServer

OOM_LOG = (
    b"[INFO:swift] args: per_device_train_batch_size=4\n"
    b"{'loss': 1.9, 'grad_norm': 0.4, 'learning_rate': 1e-05, 'epoch': 0.5}\n"
    b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of "
    b"23.65 GiB of which 3.06 MiB is free.\n"
)


def _log(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_submit_streams_the_log_and_prints_the_title_and_url(
    trainwreck: TrainwreckCommand, live_server: LiveServer, tmp_path: Path
) -> None:
    trainwreck.settings["url"] = live_server.url
    log = _log(tmp_path, "train.log", OOM_LOG)
    metadata = {"team": "vision", "job_id": "88", "project": "llama", "cluster": "a100", "user": "ada", "exit_code": 1}
    options = [f"--{name.replace('_', '-')}={value}" for name, value in metadata.items()]

    result = trainwreck.run("submit", log, *options)

    assert result.returncode == 0, result.stderr
    title, url = result.stdout.decode().splitlines()
    assert title == "The GPU ran out of memory"
    stored = api_get(live_server.url, f"/api/v1/diagnoses/{url.rsplit('/', 1)[1]}")
    assert stored["url"] == url
    assert stored["category"] == "gpu_oom"
    assert {name: stored[name] for name in metadata} == metadata
    assert stored["log_bytes"] == len(OOM_LOG)
    assert trainwreck.spooled_logs() == []


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.compress], ids=["gzip", "zstd"])
def test_a_compressed_log_is_sent_as_it_is(
    trainwreck: TrainwreckCommand, live_server: LiveServer, tmp_path: Path, compress: Callable[[bytes], bytes]
) -> None:
    trainwreck.settings["url"] = live_server.url
    log = _log(tmp_path, "train.log.z", compress(OOM_LOG))

    result = trainwreck.run("submit", log)

    assert result.returncode == 0, result.stderr
    diagnosis_id = result.stdout.decode().splitlines()[1].rsplit("/", 1)[1]
    assert api_get(live_server.url, f"/api/v1/diagnoses/{diagnosis_id}")["log_bytes"] == len(OOM_LOG)


def test_with_the_server_down_the_log_waits_in_the_spool_until_flush_sends_it(
    trainwreck: TrainwreckCommand, make_app: Callable[..., FastAPI], tmp_path: Path
) -> None:
    server = LiveServer(make_app())  # its port is taken but nothing answers until it starts
    trainwreck.settings.update(url=server.url, submit_attempts="2")
    log = _log(tmp_path, "train.log", OOM_LOG)

    down = trainwreck.run("submit", log, "--team", "vision", "--job-id", "77")

    assert down.returncode == 1
    assert b"Connection refused" in down.stderr
    [spooled] = trainwreck.spooled_logs()
    assert spooled.read_bytes() == OOM_LOG
    assert trainwreck.run("submit", "--flush").returncode == 1
    assert trainwreck.spooled_logs() == [spooled]

    server.start()
    try:
        up = trainwreck.run("submit", "--flush")
        [stored] = api_get(server.url, "/api/v1/diagnoses")["items"]
    finally:
        server.stop()
    assert up.returncode == 0, up.stderr
    assert f"sent spooled log {log}".encode() in up.stdout
    assert (stored["team"], stored["job_id"], stored["category"]) == ("vision", "77", "gpu_oom")
    assert list((trainwreck.data_dir / "spool").iterdir()) == []


def test_a_failing_gateway_is_tried_a_bounded_number_of_times_then_the_log_is_spooled(
    trainwreck: TrainwreckCommand, tmp_path: Path
) -> None:
    log = _log(tmp_path, "train.log", OOM_LOG)
    with FailingGateway() as gateway:
        trainwreck.settings.update(url=gateway.url, submit_attempts="3")
        result = trainwreck.run("submit", log)

    assert result.returncode == 1
    assert gateway.requests == 3
    assert b"answered 502: no healthy upstream" in result.stderr
    assert len(trainwreck.spooled_logs()) == 1


def _token_of_team(trainwreck: TrainwreckCommand, store_url: str, team: str) -> str:
    admin = TrainwreckCommand(trainwreck.data_dir.parent / "admin", {"database_url": store_url})
    created = admin.run("token", "create", "--team", team)
    assert created.returncode == 0, created.stderr
    return created.stdout.decode().strip()


def test_the_token_is_sent_as_a_bearer_token(
    trainwreck: TrainwreckCommand, make_app: Callable[..., FastAPI], store_url: str, tmp_path: Path
) -> None:
    token = _token_of_team(trainwreck, store_url, "vision")
    server = LiveServer(make_app(auth="on"))
    server.start()
    try:
        trainwreck.settings.update(url=server.url, token=token)
        accepted = trainwreck.run("submit", _log(tmp_path, "train.log", OOM_LOG))
        trainwreck.settings["token"] = "not-a-token"
        refused = trainwreck.run("submit", _log(tmp_path, "other.log", OOM_LOG + b"again\n"))
        [stored] = api_get(server.url, "/api/v1/diagnoses", token=token)["items"]
    finally:
        server.stop()

    assert accepted.returncode == 0, accepted.stderr
    assert stored["team"] == "vision"
    assert refused.returncode == 2
    assert b"refused the log (401)" in refused.stderr
    assert trainwreck.spooled_logs() == []


def test_submit_without_a_server_url_is_a_usage_error(trainwreck: TrainwreckCommand, tmp_path: Path) -> None:
    result = trainwreck.run("submit", _log(tmp_path, "train.log", OOM_LOG))

    assert result.returncode == 2
    assert b"TRAINWRECK_URL is not set" in result.stderr
