"""One error type for the whole API, and handlers that turn every failure into ``{"error": ...}``.

FastAPI's own handlers answer ``{"detail": ...}`` and 422 for bad input; DeltaDatabase's clients
expect ``{"error": ...}`` and 400, so this app replaces them all.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("deltadb.server")


class ApiError(Exception):
    """An expected failure with the HTTP status it maps to."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


_STATUS_MESSAGES = {
    404: "not found",
    405: "method not allowed",
}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if not detail or detail in ("Not Found", "Method Not Allowed"):
        detail = _STATUS_MESSAGES.get(exc.status_code, detail or "error")
    return error_response(exc.status_code, detail, getattr(exc, "headers", None))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
        problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return error_response(400, "invalid request: " + "; ".join(problems))


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    # Never echo the exception: it may carry document contents or key material.
    log.exception("unhandled error: %s", type(exc).__name__)
    return error_response(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
