"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from app.api.deps import SessionDep
from app.api.schemas import ErrorOut

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"model": ErrorOut}})
def readyz(session: SessionDep) -> dict[str, str]:
    """The process answers and the store is reachable (503 otherwise)."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}
