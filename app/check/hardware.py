"""The GPU table (`hardware/gpus.yaml`): a card's compute capability and memory from the name it goes by."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated

import msgspec
import regex

from app.diagnosis.knowledge import check_regex, read_spec
from app.resources import bundled
from app.validation import InvalidField

BUILTIN_GPU_TABLE = bundled("hardware") / "gpus.yaml"


class GpuSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pattern: str
    compute_capability: Annotated[float, msgspec.Meta(gt=0)]
    memory_gib: Annotated[float, msgspec.Meta(gt=0)]
    names: Annotated[list[str], msgspec.Meta(min_length=1)]  # names the pattern must match

    def validate(self) -> None:
        check_regex("pattern", self.pattern)
        compiled = regex.compile(self.pattern)
        for name in self.names:
            if compiled.search(name) is None:
                raise InvalidField("names", f"{self.pattern!r} does not match its sample {name!r}")


class GpuTableSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    gpus: Annotated[list[GpuSpec], msgspec.Meta(min_length=1)]


@dataclass(frozen=True, slots=True)
class GpuModel:
    compute_capability: float
    memory_gib: float


@dataclass(frozen=True, slots=True)
class GpuTable:
    entries: tuple[tuple[regex.Pattern[str], GpuModel], ...]

    def lookup(self, name: str | None) -> GpuModel | None:
        """The first entry whose pattern the name matches."""
        if not name:
            return None
        return next((model for pattern, model in self.entries if pattern.search(name)), None)


@cache
def load_gpu_table(path: Path = BUILTIN_GPU_TABLE) -> GpuTable:
    """The table, validated (every pattern matches its sample names)."""
    spec = read_spec(path, GpuTableSpec, kind="GPU table")
    return GpuTable(
        entries=tuple(
            (regex.compile(gpu.pattern), GpuModel(compute_capability=gpu.compute_capability, memory_gib=gpu.memory_gib))
            for gpu in spec.gpus
        )
    )
