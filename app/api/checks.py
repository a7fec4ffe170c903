"""POST /api/v1/checks: a launch command and the machine it will run on in, the check JSON out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import TeamScopeDep
from app.api.schemas import ErrorOut
from app.check.checker import MAX_COMMAND_CHARS, Checker
from app.check.machine import Machine

router = APIRouter(prefix="/checks", tags=["checks"])
MAX_CONFIG_CHARS = 256_000


class MachineIn(BaseModel):
    """The machine the run will use; what is left out is unknown (rules needing it stay quiet)."""

    model_config = ConfigDict(extra="forbid")

    gpu: str | None = Field(default=None, max_length=200)
    gpus: int | None = Field(default=None, ge=0, le=100_000)
    gpu_memory_gib: float | None = Field(default=None, gt=0, le=100_000)
    compute_capability: float | None = Field(default=None, gt=0, le=100)
    host_memory_gib: float | None = Field(default=None, gt=0, le=1_000_000)
    shm_gib: float | None = Field(default=None, ge=0, le=1_000_000)
    disk_free_gib: float | None = Field(default=None, ge=0, le=1e9)
    dataset_gib: float | None = Field(default=None, ge=0, le=1e9)


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str = Field(min_length=1, max_length=MAX_COMMAND_CHARS)
    machine: MachineIn = Field(default_factory=MachineIn)
    configs: dict[str, Annotated[str, Field(max_length=MAX_CONFIG_CHARS)]] = Field(
        default_factory=dict, max_length=16,
        description="Files the command names (a YAML config, a DeepSpeed JSON, a model's config.json), by path.",
    )


class FindingOut(BaseModel):
    rule: str
    severity: str
    title: str
    parameters: list[str]
    message: str
    suggested: dict[str, Any]
    prevents: list[str]


class CheckOut(BaseModel):
    command: str
    framework: str | None
    machine: dict[str, Any]
    effective_batch: dict[str, Any]
    findings: list[FindingOut]
    corrected_command: str | None
    verification_command: str | None
    rule_set_version: str


@router.post("", response_model=CheckOut, responses={status: {"model": ErrorOut} for status in (401, 413, 422)},
             summary="Check a launch command before it runs")
def create_check(request: Request, body: Annotated[CheckIn, Body()], scope: TeamScopeDep) -> CheckOut:
    """The findings for this command on this machine, the corrected command and the verification command."""
    del scope  # any valid token (or none, with auth off) may check; nothing is stored
    checker: Checker = request.app.state.checker
    machine = Machine(**body.machine.model_dump(exclude_none=True),
                      sources={key: "given" for key in body.machine.model_dump(exclude_none=True)})
    report = checker.check(body.command, machine=machine, read_config=body.configs.get)
    return CheckOut.model_validate(report.to_dict())
