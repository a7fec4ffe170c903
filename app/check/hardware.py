"""The GPU table (`hardware/gpus.yaml`): a card's compute capability and memory from the name it goes by."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import regex
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.diagnosis.knowledge import read_spec
from app.resources import bundled

BUILTIN_GPU_TABLE = bundled("hardware") / "gpus.yaml"


class GpuSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    compute_capability: float = Field(gt=0)
    memory_gib: float = Field(gt=0)
    names: list[str] = Field(min_length=1)  # names the pattern must match

    @model_validator(mode="after")
    def _names_match(self) -> GpuSpec:
        try:
            compiled = regex.compile(self.pattern)
        except regex.error as error:
            raise ValueError(f"invalid regex: {error}") from None
        for name in self.names:
            if compiled.search(name) is None:
                raise ValueError(f"{self.pattern!r} does not match its sample {name!r}")
        return self


class GpuTableSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gpus: list[GpuSpec] = Field(min_length=1)


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
