"""`trainwreck serve`: migrate the store, refuse unsafe exposure, run the app under uvicorn (several workers: each
in its own process, on its own socket)."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.config import Settings
from app.errors import TrainwreckError
from app.main import create_app
from app.services.auth import is_loopback
from app.store import migrate
from app.store.access import open_store
from app.store.repositories.tokens import any_active_token

logger = logging.getLogger(__name__)
server_logger = logging.getLogger("uvicorn.error")  # where uvicorn's own workers write, set up as theirs
HTTP_PROTOCOL = "app.http_protocol:HeaderDeadlineProtocol"  # an import path: workers import it themselves
APP_FACTORY = "app.main:create_app"
CGROUP_ROOT = Path("/sys/fs/cgroup")
SUPERVISE_SECONDS = 0.5
MIN_WORKER_LIFE_SECONDS = 10.0  # a worker that dies sooner died starting: the group stops
WORKER_STOP_SECONDS = 30.0  # for a worker to finish its requests once told to stop


class UnsafeBindError(TrainwreckError):
    """Listening beyond this machine without any way to authenticate."""

    code = "unsafe_bind"
    status = 500


def check_exposure(settings: Settings, *, tokens_exist: bool) -> None:
    """Refuse a non-loopback address in `auth = auto` while no token exists (nobody could be let in safely).

    TRAINWRECK_AUTH=off serves openly on purpose; `auth = on` always requires tokens.
    """
    if settings.auth == "auto" and not is_loopback(settings.host) and not tokens_exist:
        raise UnsafeBindError(
            f"refusing to listen on {settings.host} without API tokens: create one with "
            "`trainwreck token create --team TEAM`, or set TRAINWRECK_AUTH=off to serve every team openly"
        )


def serve(settings: Settings, *, workers: int = 1) -> None:
    """Upgrade the store to the newest schema, then serve until interrupted, in `workers` processes.

    Several workers each build the app from the environment (uvicorn imports `create_app` in every
    process), so the settings given here travel as TRAINWRECK_ variables.
    """
    migrate.upgrade(settings.sqlalchemy_url)
    with open_store(settings, migrate_first=False) as session_factory, session_factory() as session:
        tokens_exist = any_active_token(session)
    check_exposure(settings, tokens_exist=tokens_exist)
    if settings.auth == "on" and not tokens_exist:
        logger.warning("auth is on but no token exists: every request will answer 401")
    settings.export("header_timeout_seconds")  # read by the HTTP protocol, in every worker
    if workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                    http=HTTP_PROTOCOL)
        return
    settings.export("host", "port", "public_url")
    if not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(APP_FACTORY, factory=True, host=settings.host, port=settings.port, workers=workers,
                    log_level="info", http=HTTP_PROTOCOL)
        return
    WorkerGroup(settings, workers).run()


def default_workers(cgroup: Path = CGROUP_ROOT) -> int:
    """One worker per CPU this process may use: those it may run on, fewer under a container's CPU quota
    (cgroup v2 `cpu.max`), since each worker is a process with its own memory."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return max(1, min(cpus, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError, ZeroDivisionError):  # no cgroup v2 file, no quota (`max`), or unreadable
        return cpus


class WorkerGroup:
    """Worker processes that each listen on a socket of their own, bound with SO_REUSEPORT to one address, so
    that the kernel spreads new connections evenly over them.

    Behind uvicorn's `--workers` the workers share one socket, and the first to wake accepts every connection
    waiting: clients that keep their connection open (a proxy, a CI farm, sixteen busy clients) stayed on one
    worker while the other idled, which halved the throughput. A worker that dies is replaced, unless it died
    starting (a bad setting, a store that cannot be opened): then the group stops, as uvicorn's does.
    """

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings, self.count = settings, count
        self._stop = threading.Event()

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop every worker (each finishes its requests)."""
        config = uvicorn.Config(APP_FACTORY, factory=True, log_level="info")  # the parent's logging, as uvicorn's
        config.configure_logging()
        host = self.settings.host
        with _port_holder(host, self.settings.port) as port:
            self.settings.replace(port=port).export("port")  # asked for port 0: links name the one chosen
            server_logger.info("Started parent process [%d]", os.getpid())
            server_logger.info("Uvicorn running on http://%s:%d with %d workers (Press CTRL+C to quit)", host, port,
                               self.count)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: self._stop.set())
            workers = [self._start(host, port) for _ in range(self.count)]
            try:
                self._supervise(workers, host, port)
            finally:
                for worker, _ in workers:
                    if worker.is_alive():
                        worker.terminate()
                for worker, _ in workers:
                    worker.join(WORKER_STOP_SECONDS)
                    if worker.is_alive():
                        worker.kill()
                server_logger.info("Stopped parent process [%d]", os.getpid())

    def _supervise(self, workers: list[tuple[BaseProcess, float]], host: str, port: int) -> None:
        while not self._stop.wait(SUPERVISE_SECONDS):
            for index, (worker, started) in enumerate(workers):
                if worker.is_alive():
                    continue
                if worker.exitcode == STARTUP_FAILURE or time.monotonic() - started < MIN_WORKER_LIFE_SECONDS:
                    server_logger.error("worker [%s] exited with %s while starting; stopping", worker.pid,
                                        worker.exitcode)
                    raise SystemExit(STARTUP_FAILURE)
                server_logger.warning("worker [%s] exited with %s; starting another", worker.pid, worker.exitcode)
                workers[index] = self._start(host, port)

    @staticmethod
    def _start(host: str, port: int) -> tuple[BaseProcess, float]:
        worker = multiprocessing.get_context("spawn").Process(target=_serve_worker, args=(host, port))
        worker.start()
        return worker, time.monotonic()


def _serve_worker(host: str, port: int) -> None:
    """One worker: the app, built from the environment, on a socket of its own."""
    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, log_level="info", http=HTTP_PROTOCOL)
    uvicorn.Server(config).run(sockets=[_reuse_port_socket(host, port)])


@contextmanager
def _port_holder(host: str, port: int) -> Iterator[int]:
    """Hold the address for the workers (a bound socket that never listens, so it is given no connections) and
    give its port (port 0: the one the system chose). An address already served is refused: the workers'
    sockets would otherwise join another server's and share its connections."""
    try:
        with socket.socket(_family(host, port), socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
            port = probe.getsockname()[1]
        holder = _reuse_port_socket(host, port)
    except OSError as error:
        server_logger.error("cannot listen on %s:%d: %s", host, port, error.strerror or error)
        raise SystemExit(STARTUP_FAILURE) from None
    with holder:
        yield port


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host, port), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _family(host: str, port: int) -> socket.AddressFamily:
    """IPv4 or IPv6, as the address resolves."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
