"""Machines for the check tests."""

from __future__ import annotations

from app.check.machine import Machine

# A machine on which nothing but the command itself can be wrong: 8 × A100 80 GB, plenty of host memory,
# shared memory and disk.
ROOMY = {"gpu": "NVIDIA A100-SXM4-80GB", "gpus": 8, "host_memory_gib": 1024, "shm_gib": 512, "disk_free_gib": 8000}


def machine(**facts: object) -> Machine:
    """The roomy machine with some facts changed (None: unknown)."""
    merged = {**ROOMY, **facts}
    return Machine(**{key: value for key, value in merged.items() if value is not None})  # type: ignore[arg-type]
