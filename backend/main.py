"""The Open Chat application: `uvicorn backend.main:app`."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from backend.api.docs import mount_api_docs
from backend.api.main import api_router
from backend.api.routes import imports, mock_openai, quickchat
from backend.core import metrics
from backend.core.config import settings
from backend.core.db import REPO_ROOT, SessionLocal, engine, migration_problem, run_unit_of_work
from backend.core.logging import configure_logging
from backend.core.startup_errors import ConfigurationError, explain, report
from backend.errors import register_exception_handlers
from backend.input_guard import InputGuardMiddleware
from backend.mcp import runtime as mcp_runtime
from backend.middleware import AccessLogMiddleware, BodySizeLimitMiddleware
from backend.models import Response as AnswerRow
from backend.security_headers import SecurityHeadersMiddleware
from backend.services import import_runner, users

logger = logging.getLogger(__name__)

FRONTEND_DIR = REPO_ROOT / "frontend"


class DatabaseNotMigrated(ConfigurationError):
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
    try:
        _open_the_database()
    except Exception as error:
        if (sentence := explain(error, database_url=settings.DATABASE_URL)) is None:
            raise
        # One line; the server's report of the failed start-up is left out (see report).
        report(sentence, error)
        if isinstance(error, ConfigurationError):
            raise
        raise ConfigurationError(sentence) from error
    _freeze_startup_objects()
    async with mcp_runtime.running(), import_runner.running():
        _log_started()
        yield


def _log_started() -> None:
    logger.info(
        "started",
        extra={
            "environment": settings.ENVIRONMENT,
            "database": engine.dialect.name,
            "mock_llm": settings.use_mock_llm,
        },
    )


def _open_the_database() -> None:
    # Refuse to serve on a schema this code was not written for.
    if problem := migration_problem(engine):
        raise DatabaseNotMigrated(problem)
    # (again if another worker starting beside this one created the admin meanwhile: 40001)
    run_unit_of_work(users.ensure_configured_admin)
    mcp_runtime.check_servers_file()


def mount_frontend(app: FastAPI, directory: Path) -> None:
    """Serve the static UI at / — after every API route, so it never shadows one."""
    if (directory / "index.html").is_file():
        app.mount("/", StaticFiles(directory=directory, html=True), name="frontend")
    else:
        logger.warning("frontend_missing", extra={"directory": str(directory)})


def mount_metrics(app: FastAPI) -> None:
    """`/metrics` in Prometheus' text format; 404 unless METRICS_TOKEN is set (then bearer)."""
    metrics.watch_answers(engine, AnswerRow.__table__)
    metrics.watch_commits(SessionLocal)
    app.add_middleware(metrics.MetricsMiddleware)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        return metrics.metrics_response(request, token=settings.METRICS_TOKEN, engine=engine)


def create_app() -> FastAPI:
    configure_logging(settings.LOG_LEVEL)
    if warning := settings.development_secret_warning():
        logger.warning(warning)
    app = FastAPI(
        title=settings.PROJECT_NAME,
        summary="A private AI chat service whose every stored row is encrypted at rest.",
        lifespan=lifespan,
        docs_url=None,  # served from the app's own files by mount_api_docs, not a CDN
        redoc_url=None,
    )
    register_exception_handlers(app)
    # Innermost first: the guard reads bodies through the size limit.
    app.add_middleware(InputGuardMiddleware, streamed_paths=frozenset({imports.UPLOAD_PATH}))
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.MAX_REQUEST_BYTES,
        path_limits={imports.UPLOAD_PATH: settings.MAX_IMPORT_BYTES},
    )
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, https_only=settings.cookie_secure)
    mount_metrics(app)
    app.include_router(api_router)
    app.include_router(quickchat.router)
    mount_api_docs(app)
    if settings.use_mock_llm:  # only while the mock answers; signed-in callers only
        app.include_router(mock_openai.router)
    mount_frontend(app, FRONTEND_DIR)
    return app


app = create_app()
