"""The service over real HTTP on loopback (uvicorn): uploads, concurrency, responsiveness, metrics."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi import FastAPI
from server_support import LiveServer, oom_log, padded_log

URL = "/api/v1/diagnoses"


def test_curl_style_multipart_upload_answers_201(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        response = client.post(URL, files={"file": ("crash.log", oom_log())})
        fetched = client.get(f"{URL}/{response.json()['id']}")

    assert response.status_code == 201
    assert response.json()["category"] == "gpu_oom"
    assert fetched.json()["id"] == response.json()["id"]


def test_concurrent_uploads_all_succeed(live_server: LiveServer) -> None:
    def upload(number: int) -> int:
        with httpx.Client(base_url=live_server.url, timeout=60) as client:
            return client.post(f"{URL}?job_id={number}", content=oom_log(job=f"job-{number}")).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(upload, range(6)))

    assert statuses == [201] * 6
    with httpx.Client(base_url=live_server.url) as client:
        assert client.get(URL).json()["total"] == 6


def test_a_big_upload_does_not_stall_other_requests(live_server: LiveServer) -> None:
    big = padded_log(48 << 20)
    done = threading.Event()
    result: dict[str, int] = {}

    def upload() -> None:
        with httpx.Client(base_url=live_server.url, timeout=120) as client:
            result["status"] = client.post(URL, content=big).status_code
        done.set()

    sender = threading.Thread(target=upload)
    sender.start()
    slowest = 0.0
    probes = 0
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        while not done.is_set():
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
            probes += 1
            time.sleep(0.05)
    sender.join()

    assert result["status"] == 201
    assert probes >= 3
    assert slowest < 2.0  # the upload takes several seconds to diagnose and store


def test_an_oversized_upload_is_refused_before_it_is_read(live_server: LiveServer) -> None:
    declared = live_server.app.state.settings.max_upload_bytes + 1
    request = (
        f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as connection:
        connection.sendall(request + b"only the first bytes\n")
        answer = connection.recv(65536)

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"too_large"' in answer


def test_metrics_count_requests_diagnoses_and_bytes(live_server: LiveServer) -> None:
    log = oom_log()
    with httpx.Client(base_url=live_server.url) as client:
        created = client.post(URL, content=log).json()
        client.get(f"{URL}/{created['id']}")
        client.get(f"/no/such/{created['id']}")
        metrics = client.get("/metrics").text

    assert 'trainwreck_diagnoses_total{category="gpu_oom"} 1.0' in metrics
    assert f"trainwreck_ingested_bytes_total {float(len(log))}" in metrics
    assert "trainwreck_diagnose_seconds_count 1.0" in metrics
    assert 'trainwreck_http_requests_total{method="POST",route="/api/v1/diagnoses",status="201"} 1.0' in metrics
    assert 'route="/api/v1/diagnoses/{diagnosis_id}",status="200"} 1.0' in metrics
    assert 'route="unmatched",status="404"} 1.0' in metrics


def test_a_client_that_hangs_up_mid_upload_is_no_server_error(live_server: LiveServer) -> None:
    request = (
        f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {10 << 20}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as connection:
        connection.sendall(request + b"{'loss': 1.2}\n" * 1000)
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=live_server.url) as client:
        while time.monotonic() < deadline:
            metrics = client.get("/metrics").text
            if 'route="/api/v1/diagnoses",status=' in metrics:
                break
            time.sleep(0.1)
        assert client.get("/api/v1/diagnoses").json()["items"] == []
    assert 'route="/api/v1/diagnoses",status="500"' not in metrics
    assert 'route="/api/v1/diagnoses",status="400"' in metrics
    assert list(live_server.app.state.settings.upload_spool_dir.glob("trainwreck-upload-*")) == []


def test_an_upload_that_stops_sending_is_dropped_after_the_idle_timeout(make_app: Callable[..., FastAPI]) -> None:
    server = LiveServer(make_app(upload_idle_timeout_seconds=1))
    server.start()
    try:
        request = (
            f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {1 << 20}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(request + b"{'loss': 1.2}\n")  # then nothing more
            started = time.monotonic()
            answer = connection.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b'"upload_stalled"' in answer
        assert time.monotonic() - started < 5
    finally:
        server.stop()
