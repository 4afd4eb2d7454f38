"""The Open Chat application: `uvicorn backend.main:app`."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from backend.api.docs import mount_api_docs
from backend.api.main import api_router
from backend.api.routes import mock_openai, quickchat
from backend.core.config import settings
from backend.core.db import REPO_ROOT, SessionLocal, engine, migration_problem
from backend.core.logging import configure_logging
from backend.errors import register_exception_handlers
from backend.input_guard import InputGuardMiddleware
from backend.middleware import AccessLogMiddleware, BodySizeLimitMiddleware
from backend.security_headers import SecurityHeadersMiddleware
from backend.services import users

logger = logging.getLogger(__name__)

FRONTEND_DIR = REPO_ROOT / "frontend"


class DatabaseNotMigrated(RuntimeError):
    pass


def _freeze_startup_objects() -> None:
    """Take what start-up loaded out of the cyclic garbage collector's view (once).

    The modules, mappers, routes and the SDK's pydantic types are ~175,000 objects that live
    as long as the process; a full collection walked them all, ~107 ms on this machine, and
    under load that pause landed in whichever request triggered it. Frozen, it takes well
    under a millisecond. Only what is still alive after a collection is frozen.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Refuse to serve on a schema this code was not written for.
    if problem := migration_problem(engine):
        logger.critical("database_not_migrated", extra={"reason": problem})
        raise DatabaseNotMigrated(problem)
    with SessionLocal() as session:
        users.ensure_configured_admin(session=session)
    _freeze_startup_objects()
    logger.info(
        "started",
        extra={
            "environment": settings.ENVIRONMENT,
            "database": engine.dialect.name,
            "mock_llm": settings.use_mock_llm,
        },
    )
    yield


def mount_frontend(app: FastAPI, directory: Path) -> None:
    """Serve the static UI at / — after every API route, so it never shadows one."""
    if (directory / "index.html").is_file():
        app.mount("/", StaticFiles(directory=directory, html=True), name="frontend")
    else:
        logger.warning("frontend_missing", extra={"directory": str(directory)})


def create_app() -> FastAPI:
    configure_logging(settings.LOG_LEVEL)
    app = FastAPI(
        title=settings.PROJECT_NAME,
        summary="A private AI chat service whose every stored row is encrypted at rest.",
        lifespan=lifespan,
        docs_url=None,  # served from the app's own files by mount_api_docs, not a CDN
        redoc_url=None,
    )
    register_exception_handlers(app)
    # Innermost first: the guard reads bodies through the size limit.
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.MAX_REQUEST_BYTES)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, https_only=settings.cookie_secure)
    app.include_router(api_router)
    app.include_router(quickchat.router)
    mount_api_docs(app)
    if settings.use_mock_llm:  # only while the mock answers; signed-in callers only
        app.include_router(mock_openai.router)
    mount_frontend(app, FRONTEND_DIR)
    return app


app = create_app()
