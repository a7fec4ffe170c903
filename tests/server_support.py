"""Helpers for the store, service and API tests: crash logs to send, and the service on a loopback port."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

HF_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def oom_log(*, step: int = 853, total: int = 1900, job: str = "job-1", secret: bool = False) -> bytes:
    """A fine-tune that runs out of GPU memory at `step`; `job` makes otherwise equal logs differ."""
    lines = [
        f"+ torchrun --nproc_per_node 8 train.py --per_device_train_batch_size 4 --max_steps {total}  # {job}",
        "[INFO|trainer.py:2243] ***** Running training *****",
        f"[INFO|trainer.py:2251]   Total optimization steps = {total:,}",
    ]
    if secret:
        lines.append(f"export HF_TOKEN={HF_TOKEN}")
    for current in range(10, step + 1, 10):
        lines.append(f"{{'loss': {2.0 - current / 2000:.4f}, 'grad_norm': 1.5, 'learning_rate': 2e-05, 'epoch': 0.1}}")
        lines.append(f" {100 * current // total}%|███       | {current}/{total} [10:00<20:00,  4.37s/it]")
    lines += [
        "Traceback (most recent call last):",
        '  File "/workspace/train.py", line 88, in <module>',
        "    trainer.train()",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 3 has a total capacity of "
        "79.15 GiB of which 1.12 GiB is free.",
    ]
    return ("\n".join(lines) + "\n").encode()


def padded_log(size: int, *, job: str = "padded") -> bytes:
    """An OOM log padded with harmless progress lines to about `size` bytes (several stored chunks)."""
    filler = f"[INFO|trainer.py:100] {job} still loading shards, nothing to see here {'.' * 40}\n".encode()
    return filler * (size // len(filler)) + oom_log(job=job)


def bearer(token: str) -> dict[str, str]:
    """The header that carries an API token."""
    return {"Authorization": f"Bearer {token}"}


class LiveServer:
    """The app served by uvicorn on 127.0.0.1 in a background thread (real HTTP on loopback)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="on", timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def start(self) -> None:
        """Start serving; returns once the app has finished its startup."""
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
