"""Prometheus metrics for `/metrics`: requests, latency, answers and tokens by model, the store.

Off unless METRICS_TOKEN is set; then `/metrics` wants `Authorization: Bearer <METRICS_TOKEN>`.
Counters are per process: with several uvicorn workers each has its own (scrape each worker,
or run one per container). Labels are route templates (`/api/conversations/{uuid}`), never
paths, users or message text, so their number stays small and they say nothing about anyone.
"""

import hmac
import time
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import Engine, Insert, Table, event
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.core.asgi import call_observed

registry = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "openchat_http_requests_total",
    "HTTP requests answered.",
    ["method", "route", "status"],
    registry=registry,
)
LATENCY = Histogram(
    "openchat_http_request_duration_seconds",
    "Time to answer an HTTP request (whole body).",
    ["method", "route"],
    registry=registry,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ANSWERS = Counter(
    "openchat_answers_total", "Answers stored, by model.", ["model"], registry=registry
)
TOKENS = Counter(
    "openchat_tokens_total",
    "Tokens the provider reported, by model and kind.",
    ["model", "kind"],
    registry=registry,
)
COMMIT = Histogram(
    "openchat_store_commit_seconds",
    "Time to commit a unit of work (flush and durable commit).",
    registry=registry,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
STORE_SIZE = Gauge(
    "openchat_store_size_bytes", "Bytes the store's files take on disk.", registry=registry
)


def _route(scope: Scope) -> str:
    """The matched route's template with the prefix of the routers it sits in (a nested
    router's route knows only its own part: `/conversations/{uuid}` under `/api`)."""
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return "other"  # static files, 404s: one label, whatever the path
    own = template.strip("/").split("/")
    actual = scope.get("path", "/").strip("/").split("/")
    prefix = actual[: max(len(actual) - len(own), 0)]
    return "/" + "/".join([*prefix, *own]) if prefix else str(template)


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: no per-request task, no body copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def count(status: int, seconds: float) -> None:
            route, method = _route(scope), scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(seconds)

        await call_observed(self.app, scope, receive, send, finished=count)


def watch_answers(engine: Engine, responses: Table) -> None:
    """Count stored answers and their tokens as their rows are inserted, on any answer path:
    ORM and Core inserts both pass through the engine's execute (answers are written with
    Core statements on the hot path, where ORM events would not see them)."""

    def executed(
        _connection: Any,
        statement: Any,
        multiparams: Any,
        params: Any,
        _options: Any,
        _result: Any,
    ) -> None:
        if not (isinstance(statement, Insert) and statement.table is responses):
            return
        rows = multiparams if isinstance(multiparams, list) and multiparams else [params or {}]
        for row in rows:
            if isinstance(row, dict) and row.get("model_used"):
                _count_answer(row)

    event.listen(engine, "after_execute", executed)


def _count_answer(row: dict[str, Any]) -> None:
    model = str(row["model_used"])
    ANSWERS.labels(model).inc()
    for kind in ("prompt", "completion"):
        tokens = row.get(f"tokens_{kind}")
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
            TOKENS.labels(model, kind).inc(tokens)


def watch_commits(session_class: type[Session] | sessionmaker[Session]) -> None:
    def before(session: Session) -> None:
        session.info["metrics_commit_started"] = time.perf_counter()

    def after(session: Session) -> None:
        if (started := session.info.pop("metrics_commit_started", None)) is not None:
            COMMIT.observe(time.perf_counter() - started)

    event.listen(session_class, "before_commit", before)
    event.listen(session_class, "after_commit", after)


def store_files(engine: Engine) -> list[Path]:
    """The files that hold the data (deltadb's directory, SQLite's file and its WAL)."""
    name, database = engine.dialect.name, engine.url.database
    if not database or database == ":memory:":
        return []
    path = Path(database).expanduser()
    if name == "deltadb":
        return [p for p in path.iterdir() if p.is_file()] if path.is_dir() else []
    if name == "sqlite":
        return [p for p in (path, Path(f"{path}-wal")) if p.is_file()]
    return []


def metrics_response(request: Request, *, token: str | None, engine: Engine) -> Response:
    if not token:
        return PlainTextResponse("Not Found", status_code=404)
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        headers = {"WWW-Authenticate": "Bearer"}
        return PlainTextResponse("Metrics need the METRICS_TOKEN bearer token.", 401, headers)
    STORE_SIZE.set(sum(p.stat().st_size for p in store_files(engine) if p.exists()))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
