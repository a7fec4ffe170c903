"""`trainwreck submit` against the real service on loopback, a failing gateway, and no server at all."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard
from client_harness import FailingGateway, ServerProcess, TrainwreckCommand, free_port

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


def _unique(content: bytes, tmp_path: Path) -> bytes:
    """The log with a line of its own, so the server does not answer with an earlier test's diagnosis."""
    return f"run in {tmp_path}\n".encode() + content


def test_submit_streams_the_log_and_prints_the_title_and_url(
    trainwreck: TrainwreckCommand, server: ServerProcess, tmp_path: Path
) -> None:
    trainwreck.settings["url"] = server.url
    content = _unique(OOM_LOG, tmp_path)
    log = _log(tmp_path, "train.log", content)

    metadata = {"team": "vision", "job_id": "88", "project": "llama", "cluster": "a100", "user": "ada", "exit_code": 1}
    options = [f"--{name.replace('_', '-')}={value}" for name, value in metadata.items()]

    result = trainwreck.run("submit", log, *options)

    assert result.returncode == 0, result.stderr
    title, url = result.stdout.decode().splitlines()
    assert title == "The GPU ran out of memory"
    stored = server.get(f"/api/v1/diagnoses/{url.rsplit('/', 1)[1]}")
    assert stored["url"] == url
    assert stored["category"] == "gpu_oom"
    assert {name: stored[name] for name in metadata} == metadata
    assert stored["log_bytes"] == len(content)
    assert trainwreck.spooled_logs() == []


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.compress], ids=["gzip", "zstd"])
def test_a_compressed_log_is_sent_as_it_is(
    trainwreck: TrainwreckCommand, server: ServerProcess, tmp_path: Path, compress: Callable[[bytes], bytes]
) -> None:
    trainwreck.settings["url"] = server.url
    content = _unique(OOM_LOG, tmp_path)
    log = _log(tmp_path, "train.log.z", compress(content))

    result = trainwreck.run("submit", log)

    assert result.returncode == 0, result.stderr
    diagnosis_id = result.stdout.decode().splitlines()[1].rsplit("/", 1)[1]
    assert server.get(f"/api/v1/diagnoses/{diagnosis_id}")["log_bytes"] == len(content)


def test_with_no_server_the_log_waits_in_the_spool_until_flush_sends_it(
    trainwreck: TrainwreckCommand, tmp_path: Path
) -> None:
    port = free_port()
    trainwreck.settings.update(url=f"http://127.0.0.1:{port}", submit_attempts="2")
    log = _log(tmp_path, "train.log", _unique(OOM_LOG, tmp_path))

    down = trainwreck.run("submit", log, "--team", "vision", "--job-id", "77")

    assert down.returncode == 1
    assert b"Connection refused" in down.stderr
    [spooled] = trainwreck.spooled_logs()
    assert spooled.read_bytes() == log.read_bytes()
    assert trainwreck.run("submit", "--flush").returncode == 1
    assert trainwreck.spooled_logs() == [spooled]

    server = ServerProcess(TrainwreckCommand(tmp_path / "server"), port=port)
    server.start()
    try:
        up = trainwreck.run("submit", "--flush")
        assert up.returncode == 0, up.stderr
        assert f"sent spooled log {log}".encode() in up.stdout
        [stored] = server.get("/api/v1/diagnoses")["items"]
    finally:
        server.stop()
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


def test_submit_without_a_server_url_is_a_usage_error(trainwreck: TrainwreckCommand, tmp_path: Path) -> None:
    result = trainwreck.run("submit", _log(tmp_path, "train.log", OOM_LOG))

    assert result.returncode == 2
    assert b"TRAINWRECK_URL is not set" in result.stderr


@pytest.fixture(scope="module")
def secured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A server that requires API tokens, and a token of team vision."""
    command = TrainwreckCommand(tmp_path_factory.mktemp("secured") / "data", {"auth": "on"})
    created = command.run("token", "create", "--team", "vision")
    assert created.returncode == 0, created.stderr
    server = ServerProcess(command)
    server.start()
    yield server, created.stdout.decode().strip()
    server.stop()


def test_the_token_is_sent_as_a_bearer_token(
    trainwreck: TrainwreckCommand, secured_server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, token = secured_server
    trainwreck.settings.update(url=server.url, token=token)

    result = trainwreck.run("submit", _log(tmp_path, "train.log", OOM_LOG))

    assert result.returncode == 0, result.stderr
    [stored] = server.get("/api/v1/diagnoses", token=token)["items"]
    assert stored["team"] == "vision"


def test_a_refused_log_is_reported_and_not_spooled(
    trainwreck: TrainwreckCommand, secured_server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, _ = secured_server
    trainwreck.settings.update(url=server.url, token="not-a-token")

    result = trainwreck.run("submit", _log(tmp_path, "train.log", OOM_LOG))

    assert result.returncode == 2
    assert b"refused the log (401)" in result.stderr
    assert trainwreck.spooled_logs() == []
