"""POST /api/v1/checks: the same answer as `trainwreck check --json`, with the machine given in the body."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

COMMAND = "NPROC_PER_NODE=8 swift sft --model Qwen/Qwen2.5-7B-Instruct --deepspeed ds.json --device_map auto"


def test_a_check_names_the_conflict_and_reads_the_config_files_sent(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/checks", json={
        "command": COMMAND, "machine": {"gpu": "NVIDIA A100-SXM4-80GB", "gpus": 8},
        "configs": {"ds.json": '{"zero_optimization": {"stage": 3}}'}})
    assert response.status_code == 200
    data = response.json()
    assert data["framework"] == "ms-swift"
    assert data["machine"]["gpu_memory_gib"] == 80
    assert data["findings"][0]["rule"] == "deepspeed-with-device-map"
    assert data["findings"][0]["suggested"] == {"device_map": None}
    assert "--device_map" not in data["corrected_command"]
    assert data["effective_batch"] == {"per_device": 1, "gpus": 8, "accumulation": 1, "total": 8}


def test_an_unknown_machine_gives_only_the_findings_the_command_alone_shows(api_client: TestClient) -> None:
    data = api_client.post("/api/v1/checks", json={"command": "torchrun --nproc_per_node 64 t.py --fp16 --bf16"}).json()
    assert [finding["rule"] for finding in data["findings"]] == ["fp16-and-bf16-both-on"]


def test_bad_checks_are_422_with_the_error_shape(api_client: TestClient) -> None:
    for body in ({"command": ""}, {"command": "a\u0000b"}, {"command": "x", "machine": {"gpus": -1}},
                 {"command": "x", "machine": {"colour": "red"}}, {"command": "echo hi\nls"}, {}):
        response = api_client.post("/api/v1/checks", json=body)
        assert response.status_code == 422, body
        assert set(response.json()["error"]) == {"code", "message"}


def test_a_huge_check_is_refused_before_it_is_read(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/checks", json={"command": "x" * (2 << 20)})
    assert response.status_code == 413


def test_with_auth_on_a_check_needs_a_token(make_app: Callable[..., FastAPI], make_token: Callable[[str], str]) -> None:
    with TestClient(make_app(auth="on")) as client:
        assert client.post("/api/v1/checks", json={"command": COMMAND}).status_code == 401
        token = make_token("vision")
        answer = client.post("/api/v1/checks", json={"command": COMMAND}, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
