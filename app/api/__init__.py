"""The JSON API under /api/v1 (thin routes: dependencies in, one service or repository call, a schema out)."""

from fastapi import APIRouter

from app.api import checks, diagnoses, jobs, stats, teams

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(checks.router)
api_router.include_router(diagnoses.router)
api_router.include_router(jobs.router)
api_router.include_router(stats.router)
api_router.include_router(teams.router)
