"""The built wheel works outside the checkout: the base install is the job-side client (diagnose, check, run,
submit) without the server's dependencies; `[server]` adds the service, its store and its migrations."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
OOM = (b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
       b"79.15 GiB of which 1.02 GiB is free.\n")


def _run(*argv: str | Path, cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("TRAINWRECK_", "PYTHONPATH", "VIRTUAL_ENV"))} | {"NO_COLOR": "1", **env}
    return subprocess.run([str(part) for part in argv], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """(the fresh venv's bin folder, the built wheel, a working folder far from the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so that building leaves nothing in the checkout
    shutil.copytree(REPOSITORY, source, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "trainwreck-data", "corpus", "build", "*.egg-info",
                                                  "__pycache__", ".mypy_cache", ".ruff_cache", "tests"))
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "dist", source, cwd=root)
    assert built.returncode == 0, built.stderr
    [wheel] = (root / "dist").glob("trainwreck-*.whl")
    venv = root / "venv"
    assert _run(sys.executable, "-m", "venv", venv, cwd=root).returncode == 0
    installed = _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=root)
    assert installed.returncode == 0, installed.stderr
    work = root / "elsewhere"
    work.mkdir()
    yield venv / "bin", wheel, work


def test_the_base_install_has_no_server_dependencies(installed: tuple[Path, Path, Path]) -> None:
    bin_dir, _wheel, work = installed
    for module in ("fastapi", "sqlalchemy", "uvicorn", "psycopg", "slack_sdk", "jinja2"):
        probe = _run(bin_dir / "python", "-c", f"import {module}", cwd=work)
        assert probe.returncode != 0, f"{module} is installed with the base package"


def test_diagnose_check_and_run_work_from_any_folder(installed: tuple[Path, Path, Path]) -> None:
    bin_dir, _wheel, work = installed
    (work / "crash.log").write_bytes(OOM)
    diagnosed = _run(bin_dir / "trainwreck", "diagnose", "crash.log", cwd=work)
    assert diagnosed.returncode == 0, diagnosed.stderr
    assert "[gpu_oom]" in diagnosed.stdout
    checked = _run(bin_dir / "trainwreck", "check", "--gpus", "8", "--", "swift", "sft", "--model", "m",
                   "--deepspeed", "zero3", "--device_map", "auto", cwd=work)
    assert checked.returncode == 1 and "[deepspeed-with-device-map]" in checked.stdout, checked.stderr
    ran = _run(bin_dir / "trainwreck", "run", "--", bin_dir / "python", "-c", "import sys; sys.exit(5)", cwd=work,
               TRAINWRECK_CLIENT_DIR=str(work / "client"))
    assert ran.returncode == 5, ran.stderr
    assert "not submitted: TRAINWRECK_URL is not set" in ran.stderr
    assert len(list((work / "client" / "runs").glob("*.log"))) == 1


def test_serve_without_the_server_extra_says_what_to_install(installed: tuple[Path, Path, Path]) -> None:
    bin_dir, _wheel, work = installed
    for command in (["serve"], ["db", "upgrade"]):
        result = _run(bin_dir / "trainwreck", *command, cwd=work)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "pip install 'trainwreck[server]'" in result.stderr, result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_with_the_server_extra_it_migrates_and_serves_from_any_folder(installed: tuple[Path, Path, Path]) -> None:
    bin_dir, wheel, work = installed
    extra = _run(bin_dir / "python", "-m", "pip", "install", "-q", f"trainwreck[server] @ {wheel.as_uri()}", cwd=work)
    assert extra.returncode == 0, extra.stderr
    data = {"TRAINWRECK_DATA_DIR": str(work / "data")}
    migrated = _run(bin_dir / "trainwreck", "db", "upgrade", cwd=work, **data)
    assert migrated.returncode == 0, migrated.stderr
    port = _free_port()
    server_log = (work / "serve.log").open("wb")
    server = subprocess.Popen([str(bin_dir / "trainwreck"), "serve", "--port", str(port), "--workers", "1"], cwd=work,
                              env={**{k: v for k, v in os.environ.items() if not k.startswith("TRAINWRECK_")}, **data},
                              stdout=server_log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        posted = httpx.post(url + "/api/v1/diagnoses", content=OOM, timeout=30)
        assert posted.status_code == 201 and posted.json()["category"] == "gpu_oom"
        docs = httpx.get(url + "/docs", timeout=10)
        assert docs.status_code == 200 and "cdn" not in docs.text.lower()
        script = docs.text.split('<script src="')[1].split('"')[0]
        assert httpx.get(url + script, timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
        server_log.close()
