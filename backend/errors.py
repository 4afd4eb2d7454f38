"""Exception handlers: every failure becomes a JSON answer with a clear `detail`."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from backend.services.errors import ServiceError

logger = logging.getLogger(__name__)

QUICKCHAT_PREFIX = "/chat/"


def _readable(error: dict) -> dict:
    # FastAPI echoes the offending input back; a 1 MiB string or a password has no place
    # in an error answer, so only location, message and type are kept.
    return {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error["type"]}


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [_readable(error) for error in exc.errors()]
    if request.url.path.startswith(QUICKCHAT_PREFIX):  # quick chat's contract: 400 + status/message
        message = "; ".join(
            f"{'.'.join(map(str, e['loc'][1:])) or 'body'}: {e['msg']}" for e in errors
        )
        return JSONResponse({"status": "error", "message": message}, status_code=400)
    return JSONResponse({"detail": errors}, status_code=422)


async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
    retry_after = getattr(exc, "retry_after", None)  # TooManyRequests, ServiceBusy
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
    # Two writers raced for the same unique value (e.g. two questions at once in one chat).
    logger.warning("integrity_conflict", extra={"path": request.url.path})
    return JSONResponse({"detail": "Conflicting concurrent change; try again"}, status_code=409)


async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    logger.error(
        "database_error", extra={"path": request.url.path, "error": type(exc.orig).__name__}
    )
    return JSONResponse({"detail": "The database is unavailable; try again"}, status_code=503)


async def database_busy(request: Request, exc: PoolTimeoutError) -> JSONResponse:
    # Every pooled connection stayed busy for the pool's whole timeout: shed load, politely.
    logger.error("database_busy", extra={"path": request.url.path})
    return JSONResponse(
        {"detail": "The server is busy; try again"}, status_code=503, headers={"Retry-After": "1"}
    )


async def statement_error(request: Request, exc: StatementError) -> JSONResponse:
    # A column type refusing a value (a sealed column without its key) says why.
    if isinstance(exc.orig, ServiceError):
        return await service_error(request, exc.orig)
    return await unexpected_error(request, exc)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled_error", extra={"path": request.url.path})
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


def register_exception_handlers(app: FastAPI) -> None:
    # Starlette types every handler as taking Exception; each of these takes the subclass it
    # is registered for, which is all it is ever called with.
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceError, service_error)  # type: ignore[arg-type]
    app.add_exception_handler(IntegrityError, integrity_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeoutError, database_busy)  # type: ignore[arg-type]
    app.add_exception_handler(StatementError, statement_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_error)
