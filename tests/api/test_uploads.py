"""POST /api/v1/diagnoses: multipart or raw body, compressed or not, with metadata; limits and bad bodies."""

from __future__ import annotations

import gzip
import socket
import subprocess
from collections.abc import Callable, Iterator

import pytest
import zstandard
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import HF_TOKEN, oom_log

from app.services.ingest_jobs import process_owner

URL = "/api/v1/diagnoses"


def test_a_multipart_upload_answers_201_with_id_url_and_the_diagnosis(api_client: TestClient) -> None:
    response = api_client.post(
        URL,
        files={"file": ("crash.log", oom_log())},
        data={"team": "vision", "job_id": "slurm-42", "project": "qwen", "cluster": "a100", "user": "ana"},
    )

    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True
    assert body["url"] == f"http://127.0.0.1:8000/diagnoses/{body['id']}"
    assert (body["category"], body["stage"], body["step"]) == ("gpu_oom", "mid_run", 850)
    assert {key: body[key] for key in ("team", "job_id", "project", "cluster", "user", "filename")} == {
        "team": "vision",
        "job_id": "slurm-42",
        "project": "qwen",
        "cluster": "a100",
        "user": "ana",
        "filename": "crash.log",
    }
    assert body["fingerprint"] and body["evidence"] and body["signature_set_version"]


def test_the_raw_body_and_query_metadata_work_too(api_client: TestClient) -> None:
    response = api_client.post(f"{URL}?team=nlp&job_id=7&exit_code=137", content=oom_log())

    assert response.status_code == 201
    assert (response.json()["team"], response.json()["job_id"], response.json()["exit_code"]) == ("nlp", "7", 137)


def test_form_fields_win_over_query_parameters(api_client: TestClient) -> None:
    response = api_client.post(f"{URL}?team=nlp&job_id=query", files={"file": oom_log()}, data={"job_id": "form"})

    assert (response.json()["team"], response.json()["job_id"]) == ("nlp", "form")


@pytest.mark.parametrize(
    ("name", "encode"),
    [("gzip", gzip.compress), ("zstd", zstandard.ZstdCompressor().compress)],
)
def test_compressed_files_are_detected_by_magic_bytes(
    api_client: TestClient, name: str, encode: Callable[[bytes], bytes]
) -> None:
    response = api_client.post(URL, files={"file": ("crash.bin", encode(oom_log(job=name)))})

    assert response.status_code == 201
    assert response.json()["category"] == "gpu_oom"


def test_a_gzip_content_encoding_is_accepted_for_raw_and_multipart_bodies(api_client: TestClient) -> None:
    raw = api_client.post(URL, content=gzip.compress(oom_log(job="raw")), headers={"Content-Encoding": "gzip"})
    boundary = "trainwreck-boundary"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.log"\r\n\r\n'.encode()
        + oom_log(job="multipart")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    encoded = api_client.post(
        URL,
        content=gzip.compress(multipart),
        headers={"Content-Encoding": "gzip", "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert (raw.status_code, encoded.status_code) == (201, 201)
    assert encoded.json()["filename"] == "a.log"


def test_the_same_log_again_answers_200_with_the_existing_diagnosis(api_client: TestClient) -> None:
    first = api_client.post(URL, files={"file": oom_log()})
    again = api_client.post(URL, content=gzip.compress(oom_log()))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["created"] is False
    assert again.json()["id"] == first.json()["id"]


def test_secrets_are_redacted_in_the_answer_and_the_stored_log(api_client: TestClient) -> None:
    created = api_client.post(URL, files={"file": oom_log(secret=True)}).json()

    stored = api_client.get(f"{URL}/{created['id']}/log")

    assert HF_TOKEN not in str(created)
    assert HF_TOKEN not in stored.text
    assert "[REDACTED:" in stored.text


@pytest.fixture
def small_limit_client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_app(max_upload_bytes=10_000)) as client:
        yield client


def test_an_upload_over_the_limit_answers_413(small_limit_client: TestClient) -> None:
    declared = small_limit_client.post(URL, content=b"x\n" * 6000)

    def stream() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y\n" * 500

    streamed = small_limit_client.post(URL, content=stream())

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"


def test_a_gzip_bomb_past_the_decompressed_limit_answers_413(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(max_decompressed_bytes=100_000)) as client:
        response = client.post(URL, content=gzip.compress(b"\n" * 1_000_000), headers={"Content-Encoding": "gzip"})

    assert response.status_code == 413


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"Content-Encoding": "br"}, b"log", 415, "unsupported_media_type"),
        ({"Content-Type": "multipart/mixed; boundary=x"}, b"--x--", 415, "unsupported_media_type"),
        ({"Content-Encoding": "gzip"}, b"not gzip at all", 400, "invalid_request"),
        ({"Content-Encoding": "gzip"}, gzip.compress(b"line\n" * 1000)[:-30], 400, "invalid_request"),
        ({"Content-Type": "multipart/form-data"}, b"no boundary", 400, "invalid_request"),
        (
            {"Content-Type": "multipart/form-data; boundary=b"},
            b"--b\r\nContent-Disposition: form-data; name",
            400,
            "invalid_request",
        ),
        ({}, b"\x1f\x8b\x08\x00broken gzip file", 422, "unreadable_log"),
    ],
)
def test_broken_bodies_answer_a_clear_error(
    api_client: TestClient, headers: dict[str, str], body: bytes, status: int, code: str
) -> None:
    response = api_client.post(URL, content=body, headers=headers)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_multipart_without_a_file_field_answers_400(api_client: TestClient) -> None:
    response = api_client.post(URL, data={"team": "vision"}, files={"other": b"log"})

    assert response.status_code == 400
    assert "`file`" in response.json()["error"]["message"]


@pytest.mark.parametrize("query", ["team=not%20a%20team", "exit_code=abc", "unknown=1", "job_id=" + "j" * 201,
                                   "job_id=a%00b", "project=x%00", "user=%1b[31m"])
def test_bad_metadata_answers_422(api_client: TestClient, query: str) -> None:
    response = api_client.post(f"{URL}?{query}", content=oom_log())

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_parameters"


def test_bad_form_metadata_answers_422(api_client: TestClient) -> None:
    response = api_client.post(URL, files={"file": oom_log()}, data={"exit_code": "SIGKILL"})

    assert response.status_code == 422
    assert "exit_code" in response.json()["error"]["message"]


def test_an_empty_log_is_refused_and_not_stored(api_client: TestClient) -> None:
    response = api_client.post(URL, content=b"\n\n")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "empty_log"
    assert api_client.get("/api/v1/diagnoses").json()["items"] == []


def test_a_gzip_bomb_within_the_limit_is_refused_by_its_expansion(make_app: Callable[..., FastAPI], tmp_path) -> None:
    bomb = gzip.compress(b"\0" * (80 << 20), compresslevel=9)  # 80 MiB of zeros in about 80 KB
    with TestClient(make_app(data_dir=str(tmp_path))) as client:
        response = client.post(URL, content=bomb, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 413
    assert "bomb" in response.json()["error"]["message"]
    assert list((tmp_path / "uploads").glob("*")) == []  # nothing left behind


def test_uploads_a_killed_server_left_behind_are_swept_at_start(make_app: Callable[..., FastAPI], tmp_path) -> None:
    spool = tmp_path / "uploads"
    spool.mkdir()
    host = socket.gethostname()
    left = [f"trainwreck-upload-{host}:{_ended_pid()}.k2x9q0ab.log", "trainwreck-upload-abc.log"]  # the last: older
    kept = [f"trainwreck-upload-{process_owner()}.p0q1r2s3.log", "trainwreck-upload-another-host:1.a1b2c3d4.log"]
    for name in [*left, *kept]:
        (spool / name).write_bytes(b"x" * 1000)
    with TestClient(make_app(data_dir=str(tmp_path))) as client:
        assert client.get("/healthz").status_code == 200
    # an upload a live worker of this host is receiving stays, as does another host's: theirs to sweep
    assert sorted(path.name for path in spool.glob("trainwreck-upload-*")) == sorted(kept)


def _ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_small_log_is_not_kept_waiting_behind_big_ones(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(max_concurrent_diagnoses=1)) as client:
        big_lane = client.app.state.diagnose_limiter
        holder = object()
        client.portal.call(big_lane.acquire_on_behalf_of, holder)  # every slot of the big logs' lane is busy
        try:
            small = client.post(URL, content=b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB\n")
            assert small.status_code == 201
        finally:
            client.portal.call(big_lane.release_on_behalf_of, holder)
