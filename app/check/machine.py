"""The machine a run will use: read from where `check` runs (nvidia-smi, /proc/meminfo, /dev/shm, the disk at
`output_dir`), each fact overridable for a job that will run elsewhere."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from app.check.hardware import GpuTable

_GIB = 1 << 30
NVIDIA_SMI_QUERY = ["nvidia-smi", "--query-gpu=name,memory.total,compute_cap", "--format=csv,noheader,nounits"]


@dataclass(frozen=True, slots=True)
class Machine:
    """Facts about the machine; None where unknown (rules that need a fact skip runs where it is unknown)."""

    gpu: str | None = None
    gpus: int | None = None
    gpu_memory_gib: float | None = None
    compute_capability: float | None = None
    host_memory_gib: float | None = None
    shm_gib: float | None = None
    disk_free_gib: float | None = None
    dataset_gib: float | None = None  # the local dataset files' size, when the command names local files
    sources: dict[str, str] = field(default_factory=dict)  # fact -> where it came from

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None and value != {}}

    def completed(self, table: GpuTable) -> Machine:
        """Compute capability and card memory from the GPU table where only the name is known."""
        model = table.lookup(self.gpu)
        if model is None:
            return self
        sources = dict(self.sources)
        updates: dict[str, Any] = {}
        if self.compute_capability is None:
            updates["compute_capability"] = model.compute_capability
            sources["compute_capability"] = "gpu table"
        if self.gpu_memory_gib is None:
            updates["gpu_memory_gib"] = model.memory_gib
            sources["gpu_memory_gib"] = "gpu table"
        return replace(self, **updates, sources=sources) if updates else self


def parse_nvidia_smi(text: str) -> dict[str, Any]:
    """`name, memory.total [MiB], compute_cap` rows: the first GPU's name and memory, the count, the capability."""
    rows = [[cell.strip() for cell in line.split(",")] for line in text.splitlines() if line.strip()]
    rows = [row for row in rows if len(row) >= 2]
    if not rows:
        return {}
    facts: dict[str, Any] = {"gpu": rows[0][0], "gpus": len(rows)}
    with contextlib.suppress(ValueError):
        facts["gpu_memory_gib"] = round(float(rows[0][1]) / 1024, 1)
    if len(rows[0]) >= 3:
        with contextlib.suppress(ValueError):
            facts["compute_capability"] = float(rows[0][2])
    return facts


def parse_meminfo(text: str) -> float | None:
    """MemTotal from /proc/meminfo, in GiB."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return round(int(parts[1]) * 1024 / _GIB, 1)
    return None


def _nvidia_smi() -> dict[str, Any]:
    if shutil.which("nvidia-smi") is None:
        return {}
    # an old driver without compute_cap refuses the query: ask again without it
    for query in (NVIDIA_SMI_QUERY, [NVIDIA_SMI_QUERY[0], "--query-gpu=name,memory.total", NVIDIA_SMI_QUERY[2]]):
        try:
            done = subprocess.run(query, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return {}
        if done.returncode == 0:
            return parse_nvidia_smi(done.stdout)
    return {}


def _existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def local_size_gib(paths: list[str]) -> float | None:
    """The total size of the local files and folders named (datasets given as paths), or None if none exist."""
    total = 0
    found = False
    for name in paths:
        path = Path(name)
        if path.is_file():
            total, found = total + path.stat().st_size, True
        elif path.is_dir():
            found = True
            total += sum(child.stat().st_size for child in path.rglob("*") if child.is_file())
    return round(total / _GIB, 2) if found else None


def read_machine(*, output_dir: str | None, dataset_paths: list[str], overrides: dict[str, Any]) -> Machine:
    """The facts of this machine, with the overrides given (flags) taking precedence."""
    facts: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def take(found: dict[str, Any], source: str) -> None:
        for key, value in found.items():
            if value is not None:
                facts[key] = value
                sources[key] = source

    take(_nvidia_smi(), "nvidia-smi")
    with contextlib.suppress(OSError):
        take({"host_memory_gib": parse_meminfo(Path("/proc/meminfo").read_text())}, "/proc/meminfo")
    if os.path.isdir("/dev/shm"):
        take({"shm_gib": round(shutil.disk_usage("/dev/shm").total / _GIB, 2)}, "/dev/shm")
    disk = _existing_parent(Path(output_dir or "."))
    take({"disk_free_gib": round(shutil.disk_usage(disk).free / _GIB, 1)}, f"free space at {disk}")
    take({"dataset_gib": local_size_gib(dataset_paths)}, "the dataset files")
    take(overrides, "given")
    if "gpu" in overrides:  # another card: what this machine's nvidia-smi said about its own no longer holds
        for key in ("gpu_memory_gib", "compute_capability"):
            if key not in overrides and sources.get(key) == "nvidia-smi":
                facts.pop(key)
                sources.pop(key)
    return Machine(**facts, sources=sources)
