"""The reference of bench_api.py: a bare FastAPI endpoint that takes the same upload and hashes it.

    python -m uvicorn --app-dir bench bare_upload:app --port 8001

What any upload costs before trainwreck does its work (HTTP, the ASGI app, reading the body).
"""

from __future__ import annotations

import hashlib

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/api/v1/diagnoses")
async def take_upload(request: Request) -> JSONResponse:
    """Read the body as it streams in and answer with its digest, as an upload route's first step would."""
    digest = hashlib.sha256()
    async for chunk in request.stream():
        digest.update(chunk)
    return JSONResponse({"sha256": digest.hexdigest()}, status_code=201)
