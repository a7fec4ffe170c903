"""Every error the service answers has one JSON shape: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from app.errors import TrainwreckError

logger = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


def error_response(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The one JSON error shape."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map our errors, validation errors, HTTP errors, store failures and anything unexpected to one shape."""
    app.add_exception_handler(TrainwreckError, _trainwreck_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(SQLAlchemyError, _store_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


def _trainwreck_error(_request: Request, error: TrainwreckError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return error_response(error.status, error.code, error.message, headers=headers)


def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("query", "path", "body"))
        problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg", "invalid")))
    return error_response(422, "invalid_parameters", "; ".join(problems) or "invalid request parameters")


def _http_error(_request: Request, error: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(error.status_code) or HTTPStatus(error.status_code).phrase.lower().replace(" ", "_")
    message = error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code).phrase
    return error_response(error.status_code, code, message, headers=error.headers)


def _store_error(_request: Request, error: SQLAlchemyError) -> JSONResponse:
    logger.error("store failure: %s", error)
    return error_response(503, "store_unavailable", "the store could not complete the request; nothing was changed")


def _unexpected_error(_request: Request, _error: Exception) -> JSONResponse:
    # Starlette re-raises the error after this answer, so the server logs its traceback.
    return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
