"""Small helpers shared by the route modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response

from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.names import MAX_BODY_BYTES, parse_json_body

if TYPE_CHECKING:
    from deltadb_dialect.server.auth import AuthService, LoginThrottle
    from deltadb_dialect.server.group_commit import GroupCommitWriter
    from deltadb_dialect.server.metrics import RequestMetrics
    from deltadb_dialect.server.schemas import SchemaRegistry
    from deltadb_dialect.server.store import EntityStore
    from deltadb_dialect.server.workers import WorkerRegistry

OK = {"status": "ok"}


@dataclass
class Services:
    store: EntityStore
    schemas: SchemaRegistry
    auth: AuthService
    workers: WorkerRegistry
    metrics: RequestMetrics
    store_path: str | None
    login_throttle: LoginThrottle
    writer: GroupCommitWriter


def services(request: Request) -> Services:
    services_: Services = request.app.state.services
    return services_


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> Any:
    return parse_json_body(await read_body(request))


def json_text(text: str, status: int = 200) -> Response:
    """A response from JSON text we already hold (stored documents): no re-encoding."""
    return Response(content=text, status_code=status, media_type="application/json")
