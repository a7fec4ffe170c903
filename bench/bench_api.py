"""API load benchmark (not a test): what one upload costs beside a bare FastAPI upload, uploads per second
from 1 to 50 clients, on SQLite and on PostgreSQL, then the server's peak memory while a 2 GB log uploads.

    .venv/bin/python bench/bench_api.py [--clients 1 4 16 50] [--duration 10] [--huge-gb 2] [--skip-postgres]

Each backend gets a fresh `trainwreck serve` (uvicorn, one worker per core) on a loopback port;
PostgreSQL gets a fresh database on the server named by TRAINWRECK_BENCH_POSTGRES_URL, dropped
afterwards. Every request carries a distinct generated ~200 KB crash log, so the server's
deduplication never short-circuits. In the same run:
  * the reference: bench/bare_upload.py, a bare FastAPI endpoint that reads the same body and hashes it;
  * the cost of one upload: one client, one request after another, the median latency of each
    server and the CPU time its processes spent per upload (read from /proc), and their ratios;
  * saturation at each client count (each client sends its next log as soon as the last is answered:
    the capacity, and the latency of a queue that deep), and the throughput's growth from one client;
  * paced load (the most clients together offering half the capacity: the latency of a server that
    keeps up).
The load generator runs on the same machine and shares its CPUs with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROUTE = "/api/v1/diagnoses"
LOG_BYTES = 200_000
BLOCK_BYTES = 1 << 20
TARGET_COST_RATIO = 6.0  # an upload's cost, as a multiple of the bare upload's
TARGET_SCALING = 1.6  # throughput with 16 clients over that with one
TARGET_P99_MS = 1000.0  # at 50 saturating clients
TARGET_RSS_MB = 300.0
COST_REQUESTS = 150

TRAINING_LINES = (
    "{{'loss': {loss:.4f}, 'grad_norm': {norm:.3f}, 'learning_rate': 1.9e-05, 'epoch': {epoch:.2f}}}\n"
    "Train: {percent:3d}%|{bar:<10}| {step}/4000 [12:{second:02d}<40:00,  1.62it/s]\n"
)
CRASHES = (
    'Traceback (most recent call last):\n  File "train.py", line 212, in <module>\n    loss.backward()\n'
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
    "79.15 GiB of which 1.02 GiB is free.\n",
    "[rank3]:[E ProcessGroupNCCL.cpp:616] [Rank 3] Watchdog caught collective operation timeout: "
    "WorkNCCL(SeqNum=4410, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=1800000) ran for 1800427 "
    "milliseconds before timing out.\n",
    "{'loss': nan, 'grad_norm': nan, 'learning_rate': 1.9e-05, 'epoch': 1.31}\n"
    "RuntimeError: Function 'MulBackward0' returned nan values in its 0th output.\n",
)


def training_lines(first_step: int, size: int) -> str:
    """Progress lines as a Hugging Face trainer prints them, about `size` characters from `first_step`."""
    parts, total, step = [], 0, first_step
    while total < size:
        line = TRAINING_LINES.format(
            loss=2.0 / (1 + step / 500),
            norm=0.3 + (step % 7) / 10,
            epoch=step / 1000,
            percent=step * 100 // 4000 % 100,
            bar="#" * (step % 10),
            step=step,
            second=step % 60,
        )
        parts.append(line)
        total += len(line)
        step += 1
    return "".join(parts)


class CrashLogs:
    """Distinct ~200 KB crash logs: a shared body of training lines behind a unique first line."""

    def __init__(self) -> None:
        self._body = training_lines(1, LOG_BYTES).encode()

    def make(self, index: int) -> bytes:
        """The index-th log; no two are byte-identical."""
        header = f"run {uuid.uuid4()} request {index}\n".encode()
        return header + self._body + CRASHES[index % len(CRASHES)].encode()


def huge_log_blocks(total_bytes: int) -> Iterator[bytes]:
    """A log of about total_bytes, generated block by block (never held in memory), ending in a crash."""
    template = training_lines(1, BLOCK_BYTES).encode()
    sent, block_number = 0, 0
    while sent < total_bytes:
        block = f"block {block_number}\n".encode() + template
        block_number += 1
        sent += len(block)
        yield block
    yield CRASHES[0].encode()


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """A memory figure of a process from /proc (VmRSS now, VmHWM the peak), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"{field_name} not in /proc/{pid}/status")


@dataclass
class RssSampler:
    """Samples a process's resident memory in a thread, keeping the highest value seen."""

    pid: int
    interval: float = 0.02
    peak_mb: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, LookupError):
                self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            self._stop.wait(self.interval)


def trainwreck_server(port: int) -> list[str]:
    """The command line of `trainwreck serve` (one worker per core)."""
    return [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]


def bare_server(port: int) -> list[str]:
    """The command line of the reference: a bare FastAPI upload endpoint under uvicorn."""
    return [sys.executable, "-m", "uvicorn", "--app-dir", str(REPOSITORY / "bench"), "bare_upload:app",
            "--port", str(port), "--log-level", "warning"]


@contextlib.contextmanager
def running_server(
    database_url: str | None, workdir: Path, command: Callable[[int], list[str]] = trainwreck_server
) -> Iterator[tuple[str, int]]:
    """A server on a free loopback port (`trainwreck serve` unless told); yields its URL and pid."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRAINWRECK_")}
    env.update(PYTHONPATH=str(REPOSITORY), TRAINWRECK_DATA_DIR=str(workdir), TRAINWRECK_PUBLIC_URL="http://bench")
    if database_url:
        env["TRAINWRECK_DATABASE_URL"] = database_url
    output = workdir / "server.log"
    workdir.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as log:
        server = subprocess.Popen(
            command(port),
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"trainwreck serve did not start:\n{output.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 404):  # 404: the bare one is up
                    break
            time.sleep(0.2)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=60)


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of server_url; dropped afterwards."""
    url = make_url(server_url)
    name = f"trainwreck_bench_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class LoadResult:
    """What one load run measured."""

    latencies_ms: list[float]
    failures: dict[str, int]
    seconds: float

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return len(self.latencies_ms) / self.seconds

    def percentile(self, fraction: float) -> float:
        """The latency below which that fraction of successful requests finished, in ms."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def apply_load(
    url: str, logs: CrashLogs, *, clients: int, seconds: float, max_requests: int, rate: float | None
) -> LoadResult:
    """`clients` concurrent uploaders for `seconds` (or max_requests); paced to `rate` req/s in total when given."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    counter = iter(range(max_requests))
    start = time.perf_counter()
    deadline = start + seconds
    interval = clients / rate if rate else 0.0

    async def client(number: int, http: httpx.AsyncClient) -> None:
        next_send = start + interval * number / clients
        while (now := time.perf_counter()) < deadline and (index := next(counter, None)) is not None:
            if interval:
                await asyncio.sleep(max(0.0, next_send - now))
                next_send += interval
            body = logs.make(index)
            sent = time.perf_counter()
            try:
                response = await http.post(ROUTE, content=body, headers={"Content-Type": "text/plain"})
            except httpx.HTTPError as error:
                failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
                continue
            if response.status_code == 201:
                latencies.append((time.perf_counter() - sent) * 1000)
            else:
                failures[str(response.status_code)] = failures.get(str(response.status_code), 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        await asyncio.gather(*(client(number, http) for number in range(clients)))
    return LoadResult(latencies, failures, time.perf_counter() - start)


def upload_huge_log(url: str, pid: int, total_bytes: int) -> tuple[int, float, float, float]:
    """Stream a generated log of total_bytes; returns (status, seconds, peak RSS MB, RSS MB before)."""
    before = rss_mb(pid)
    with RssSampler(pid) as sampler, httpx.Client(base_url=url, timeout=1800) as http:
        start = time.perf_counter()
        response = http.post(ROUTE, content=huge_log_blocks(total_bytes), headers={"Content-Type": "text/plain"})
        seconds = time.perf_counter() - start
    return response.status_code, seconds, sampler.peak_mb, before


def describe(label: str, shape: str, result: LoadResult) -> str:
    """One line of figures."""
    failures = ", ".join(f"{count}× {kind}" for kind, count in sorted(result.failures.items())) or "none"
    return (
        f"  {label:<11} {shape:<34} {len(result.latencies_ms):>5} ok in {result.seconds:5.1f} s "
        f"{result.rate:7.1f} req/s   p50 {result.percentile(0.50):7.1f} ms   p99 {result.percentile(0.99):7.1f} ms"
        f"   failures: {failures}"
    )


@dataclass(frozen=True)
class UploadCost:
    """What one upload costs, sent one after another by one client: the median latency, and the CPU time the
    server's processes spent per upload (steadier than the latency on a machine whose speed varies)."""

    latency_ms: float
    server_cpu_ms: float

    def describe(self) -> str:
        return f"median {self.latency_ms:.1f} ms, server CPU {self.server_cpu_ms:.1f} ms per upload"


@dataclass
class BackendFigures:
    """Everything measured on one backend."""

    cost: UploadCost
    saturated: dict[int, LoadResult]  # by client count
    paced: LoadResult
    huge_upload_peak_mb: float | None = None


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and of every process below it (a server's workers), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):  # a child that has just ended
            total += cpu_seconds(int(child))
    return total


def sequential_cost(url: str, pid: int, logs: CrashLogs) -> UploadCost:
    """What COST_REQUESTS uploads sent one after another by one client cost the server at `pid`."""
    before = cpu_seconds(pid)
    result = asyncio.run(apply_load(url, logs, clients=1, seconds=600, max_requests=COST_REQUESTS, rate=None))
    if result.failures:
        raise RuntimeError(f"uploads failed while measuring their cost: {result.failures}")
    server_cpu_ms = (cpu_seconds(pid) - before) * 1000 / len(result.latencies_ms)
    return UploadCost(statistics.median(result.latencies_ms), server_cpu_ms)


def measure_bare_upload(workdir: Path) -> UploadCost:
    """The reference's cost of one upload."""
    with running_server(None, workdir, bare_server) as (url, pid):
        sequential_cost(url, pid, CrashLogs())  # warm up
        return sequential_cost(url, pid, CrashLogs())


def benchmark_backend(label: str, database_url: str | None, workdir: Path, args: argparse.Namespace) -> BackendFigures:
    """The cost of one upload, saturation at each client count, paced load, then the huge upload when
    asked; prints as it goes."""
    logs = CrashLogs()

    def load(seconds: float, clients: int, rate: float | None) -> LoadResult:
        return asyncio.run(
            apply_load(url, logs, clients=clients, seconds=seconds, max_requests=args.max_requests, rate=rate)
        )

    with running_server(database_url, workdir) as (url, pid):
        load(2, max(args.clients), None)  # warm up: connections, caches, every worker
        cost = sequential_cost(url, pid, logs)
        print(f"  {label:<11} one upload after another, 1 client: {cost.describe()}", flush=True)
        saturated = {}
        for clients in args.clients:
            saturated[clients] = load(args.duration, clients, None)
            print(describe(label, f"saturation, {clients} clients", saturated[clients]), flush=True)
        most = max(args.clients)
        paced_rate = max(1.0, saturated[most].rate / 2)
        paced = load(args.duration, most, paced_rate)
        print(describe(label, f"paced at {paced_rate:.1f} req/s, {most} clients", paced), flush=True)
        print(f"  {label:<11} server RSS after the load: {rss_mb(pid):.0f} MB, peak {rss_mb(pid, 'VmHWM'):.0f} MB")
        figures = BackendFigures(cost, saturated, paced)
        if args.huge_gb > 0 and label == args.huge_backend:
            total = int(args.huge_gb * 1e9)
            status, seconds, peak, before = upload_huge_log(url, pid, total)
            print(
                f"  {label:<11} {args.huge_gb:g} GB upload, streamed from a generator: answer {status} in "
                f"{seconds:.1f} s ({total / 1e6 / seconds:.0f} MB/s); server RSS {before:.0f} MB before, "
                f"peak {peak:.0f} MB during",
                flush=True,
            )
            figures.huge_upload_peak_mb = peak
    return figures


def print_targets(label: str, figures: BackendFigures, bare: UploadCost, args: argparse.Namespace) -> None:
    """Each target beside what was measured on one backend."""

    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    for measure, ours, reference in (
        ("latency", figures.cost.latency_ms, bare.latency_ms),
        ("server CPU", figures.cost.server_cpu_ms, bare.server_cpu_ms),
    ):
        ratio = ours / reference
        print(f"Target {label}: an upload costs <= {TARGET_COST_RATIO:g}x the bare one ({measure}): {ours:.1f} ms "
              f"vs {reference:.1f} ms = {ratio:.1f}x, {verdict(ratio <= TARGET_COST_RATIO)}")
    if 1 in figures.saturated and 16 in figures.saturated:
        scaling = figures.saturated[16].rate / figures.saturated[1].rate
        print(f"Target {label}: 16 clients >= {TARGET_SCALING:g}x one client's throughput: "
              f"{figures.saturated[16].rate:.1f} vs {figures.saturated[1].rate:.1f} req/s = {scaling:.2f}x, "
              f"{verdict(scaling >= TARGET_SCALING)}")
    most = max(figures.saturated)
    p99 = figures.saturated[most].percentile(0.99)
    print(f"Target {label}: p99 < {TARGET_P99_MS:.0f} ms at {most} saturating clients: {p99:.0f} ms, "
          f"{verdict(p99 < TARGET_P99_MS)}")
    if figures.huge_upload_peak_mb is not None:
        peak = figures.huge_upload_peak_mb
        print(f"Target {label}: RSS < {TARGET_RSS_MB:.0f} MB during the {args.huge_gb:g} GB upload: {peak:.0f} MB, "
              f"{verdict(peak < TARGET_RSS_MB)}")


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 50], help="client counts to saturate with")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap on requests per load run")
    parser.add_argument("--huge-gb", type=float, default=2.0, help="size of the big upload, in GB (0: skip it)")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    args.huge_backend = "sqlite" if args.skip_postgres else "postgresql"

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"trainwreck API benchmark: {os.cpu_count()} CPUs (load average {load}), Python {sys.version.split()[0]}")
    print(
        f"Each request: a distinct generated ~{LOG_BYTES // 1000} KB crash log (a unique first line, so "
        "deduplication never short-circuits), sent raw as text/plain."
    )
    with tempfile.TemporaryDirectory(prefix="trainwreck-bench-") as scratch:
        bare = measure_bare_upload(Path(scratch) / "bare")
        print(f"  {'bare':<11} one upload after another, 1 client: {bare.describe()} (FastAPI, body hashed)")
        measured = {"sqlite": benchmark_backend("sqlite", None, Path(scratch) / "sqlite", args)}
        if not args.skip_postgres:
            postgres_url = os.environ.get("TRAINWRECK_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
            with fresh_postgres_database(postgres_url) as database_url:
                measured["postgresql"] = benchmark_backend("postgresql", database_url, Path(scratch) / "postgresql",
                                                           args)
    for label, figures in measured.items():
        print_targets(label, figures, bare, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
