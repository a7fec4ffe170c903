"""The Diagnosis and its parts: plain data, serialisable to the contract's JSON."""

from __future__ import annotations

from typing import Any

import msgspec


class Evidence(msgspec.Struct, frozen=True):
    line: int  # 1-based line number in the submitted log
    text: str


class Symptom(msgspec.Struct, frozen=True):
    signature: str
    category: str
    line: int


class Remedy(msgspec.Struct, frozen=True):
    parameter: str
    current: Any
    suggested: Any
    why: str


class LossPoint(msgspec.Struct, frozen=True):
    step: int
    loss: float  # may be nan or inf


class Diagnosis(msgspec.Struct):
    category: str
    stage: str
    step: int | None
    total_steps: int | None
    signature: str | None
    title: str
    summary: str
    confidence: float
    evidence: list[Evidence] = msgspec.field(default_factory=list)
    symptoms: list[Symptom] = msgspec.field(default_factory=list)
    remedies: list[Remedy] = msgspec.field(default_factory=list)
    run: dict[str, Any] = msgspec.field(default_factory=dict)
    fingerprint: str = ""
    corrected_command: str | None = None
    verification_command: str | None = None  # the run cut down to minutes, keeping what the diagnosis blames
    loss_curve: list[LossPoint] = msgspec.field(default_factory=list)
    signature_set_version: str = ""
    stage_reason: str | None = None  # why the stage is what it is, where the log leaves it open
    warnings: list[str] = msgspec.field(default_factory=list)  # what the engine could not read in full
    lines_read: int = 0
    bytes_read: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The contract's diagnosis JSON (NaN/Inf losses become strings, JSON has no NaN)."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["loss_curve"] = [
            {"step": point.step, "loss": point.loss if _finite(point.loss) else str(point.loss)}
            for point in self.loss_curve
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        """Inverse of to_dict, for diagnoses read back from the store."""
        fields = dict(data)
        fields["evidence"] = [Evidence(**item) for item in data.get("evidence", [])]
        fields["symptoms"] = [Symptom(**item) for item in data.get("symptoms", [])]
        fields["remedies"] = [Remedy(**item) for item in data.get("remedies", [])]
        fields["loss_curve"] = [
            LossPoint(step=item["step"], loss=float(item["loss"])) for item in data.get("loss_curve", [])
        ]
        known = cls.__struct_fields__
        return cls(**{key: value for key, value in fields.items() if key in known})


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))
