"""``create_app``: the FastAPI application of the DeltaDB entity server."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from deltadb_dialect.server.auth import AuthService
from deltadb_dialect.server.engine import make_engine
from deltadb_dialect.server.errors import install_error_handlers
from deltadb_dialect.server.fastpath import EntityFastPath
from deltadb_dialect.server.group_commit import GroupCommitWriter
from deltadb_dialect.server.guards import LoopbackHostOnly, SecurityHeaders, ValidUnicodeBodies
from deltadb_dialect.server.http import Services
from deltadb_dialect.server.metrics import MetricsMiddleware, RequestMetrics
from deltadb_dialect.server.routes import admin_routes, auth_routes, entities, schema_routes
from deltadb_dialect.server.schemas import SchemaRegistry
from deltadb_dialect.server.store import EntityStore
from deltadb_dialect.server.tables import create_internal_tables
from deltadb_dialect.server.workers import WorkerRegistry

STATIC_DIR = Path(__file__).with_name("static")
CONFIG_ENV = "DELTADB_SERVER_CONFIG"  # JSON settings the CLI hands to each uvicorn worker
DEV_TOKEN_ENV = "DELTADB_DEV_TOKEN"  # noqa: S105 - the name of the workers' development token
GRPC_WORKER_KEY_ENV = "DELTADB_GRPC_WORKER_KEY"  # the API key registered gRPC workers act as


def create_app(
    engine_url: str | None = None,
    *,
    engine: Engine | None = None,
    admin_key: str | None = None,
    client_ttl: float = 86400.0,
    token_cache_seconds: float = 2.0,
    heartbeat_seconds: float = 5.0,
    catalog_ttl: float = 2.0,
    register_worker: bool = True,
    address: str | None = None,
    fast_path: bool = True,
    dev_token: str | None = None,
    allow_client_id_login: bool = False,
    grpc_addr: str | None = None,
    worker_grpc_addr: str | None = None,
    grpc_workers: tuple[str, ...] = (),
    grpc_worker_key: str | None = None,
) -> FastAPI:
    """Build the server over ``engine_url`` (``deltadb:///PATH`` or ``sqlite:///FILE``).

    ``admin_key=None`` means development mode: loopback ``Host`` names only, and the
    ``dev_token`` (random when not given) stands in for the admin key; with
    ``allow_client_id_login``, non-browser clients may also log in with ``{"client_id": ...}``.
    ``fast_path=False`` leaves GET/PUT /entity to the FastAPI routes (tests compare the two).
    ``grpc_addr`` serves the gRPC API while the app runs; ``worker_grpc_addr`` its worker port,
    where token-less calls act as ``grpc_worker_key`` (as do the ``grpc_workers`` ids when
    they subscribe without credentials); see ``grpc_api``.
    """
    if engine is None:
        if engine_url is None:
            raise ValueError("create_app needs engine_url or engine")
        engine = make_engine(engine_url)
    create_internal_tables(engine)

    schemas = SchemaRegistry(engine)
    request_metrics = RequestMetrics()
    workers = WorkerRegistry(engine, heartbeat_seconds, address)
    store = EntityStore(engine, schemas, catalog_ttl)
    auth = AuthService(engine, admin_key, client_ttl, token_cache_seconds, dev_token=dev_token,
                       allow_client_id_login=allow_client_id_login)
    svc = Services(
        store=store,
        schemas=schemas,
        auth=auth,
        workers=workers,
        metrics=request_metrics,
        store_path=make_url(str(engine.url)).database,
        login_throttle=auth.throttle,
        writer=GroupCommitWriter(store),
    )

    grpc_servers: list[Any] = []

    def start_grpc() -> None:
        from deltadb_dialect.server import grpc_api

        access = grpc_api.WorkerAccess(frozenset(grpc_workers), grpc_worker_key)
        if grpc_addr:
            grpc_servers.append(grpc_api.start_server(grpc_api.GrpcApi(svc, access), grpc_addr))
        if worker_grpc_addr:
            port_access = grpc_api.WorkerAccess(access.worker_ids, grpc_worker_key, True)
            grpc_servers.append(grpc_api.start_server(grpc_api.GrpcApi(svc, port_access),
                                                      worker_grpc_addr))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if register_worker:
            workers.start(lambda: request_metrics.total_requests)
        start_grpc()
        try:
            yield
        finally:
            for server in grpc_servers:
                server.stop(grace=2).wait()
            if register_worker:
                await workers.stop()

    app = FastAPI(
        title="DeltaDB entity server",
        version=admin_routes.VERSION,
        description="DeltaDatabase-compatible REST API over an encrypted DeltaDB store.",
        docs_url=None,  # Swagger UI loads from a CDN; the management UI at / needs none
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = svc
    install_error_handlers(app)
    for module in (entities, auth_routes, schema_routes, admin_routes):
        app.include_router(module.router)
    _add_ui(app)
    if fast_path:
        app.add_middleware(EntityFastPath, services=svc)
    if auth.development_mode:
        app.add_middleware(LoopbackHostOnly)
    app.add_middleware(MetricsMiddleware, metrics=request_metrics)  # counts all requests
    app.add_middleware(ValidUnicodeBodies)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, the guards' too
    return app


def _add_ui(app: FastAPI) -> None:
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def ui() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn workers started by ``python -m deltadb_dialect serve``."""
    settings: dict[str, Any] = json.loads(os.environ[CONFIG_ENV])
    return create_app(
        settings["engine_url"],
        admin_key=os.environ.get("DELTADB_ADMIN_KEY") or None,
        client_ttl=settings.get("client_ttl", 86400.0),
        address=settings.get("address"),
        dev_token=os.environ.get(DEV_TOKEN_ENV) or None,
        allow_client_id_login=settings.get("allow_client_id_login", False),
        grpc_addr=settings.get("grpc_addr"),
        worker_grpc_addr=settings.get("worker_grpc_addr"),
        grpc_workers=tuple(settings.get("grpc_workers", ())),
        grpc_worker_key=os.environ.get(GRPC_WORKER_KEY_ENV) or None,
    )
