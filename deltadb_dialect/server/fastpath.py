"""GET and PUT /entity/{db} answered straight from ASGI, ahead of FastAPI's router.

These two requests are nearly all of a DeltaDatabase client's traffic. FastAPI's routing and
parameter solving cost more CPU than the store lookup itself, so this middleware serves them
directly with the same functions the documented FastAPI routes use (``routes/entities.py``),
and passes every other request on unchanged.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi.concurrency import run_in_threadpool

from deltadb_dialect.server.auth import Principal
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.http import Services
from deltadb_dialect.server.metrics import ASGIApp, Receive, Scope, Send
from deltadb_dialect.server.names import MAX_BODY_BYTES, check_database, check_key, parse_json_body

log = logging.getLogger("deltadb.server")
PREFIX = "/entity/"
_JSON = [(b"content-type", b"application/json")]


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


def read_entity(svc: Services, authorization: str | None, db: str, key: str | None,
                address: str = "unknown") -> str:
    """The stored document's JSON text (the GET /entity core)."""
    principal = svc.auth.authenticate(authorization, address)
    if not principal.allows("read"):
        raise ApiError(403, "this needs the 'read' permission")
    principal.check_database_scope(check_database(db))
    text = svc.store.get(db, check_key(key))
    if text is None:
        raise ApiError(404, "entity not found")
    return text


def parse_entities(principal: Principal, db: str, body: bytes) -> dict[str, Any]:
    """Check the caller, the name, the body and every key (the PUT /entity core, before I/O)."""
    if not principal.allows("write"):
        raise ApiError(403, "this needs the 'write' permission")
    principal.check_database_scope(check_database(db))
    documents = parse_json_body(body)
    if not isinstance(documents, dict) or not documents:
        raise ApiError(400, "body must be a JSON object of entity key -> document")
    for key in documents:
        check_key(key)
    return documents


OK_BODY = b'{"status":"ok"}'
DRY_RUN_OK_BODY = b'{"status":"ok","dry_run":true}'


async def write_entities(svc: Services, db: str, documents: dict[str, Any],
                         dry_run: bool) -> bytes:
    """Write through the group-commit writer (or validate and roll back); the response body."""
    if dry_run:
        await run_in_threadpool(svc.store.put, db, documents, True)
        return DRY_RUN_OK_BODY
    await svc.writer.put(db, documents)
    return OK_BODY


class EntityFastPath:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if (scope["type"] != "http" or method not in ("GET", "PUT")
                or not scope["path"].startswith(PREFIX)):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = dict(scope["headers"])
        authorization = headers.get(b"authorization")
        auth_text = authorization.decode("latin-1") if authorization is not None else None
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        db = scope["path"][len(PREFIX):]
        client = scope.get("client")
        address = client[0] if client else "unknown"
        extra: list[tuple[bytes, bytes]] = []
        try:
            if method == "GET":
                status, body = 200, read_entity(self.services, auth_text, db,
                                                query.get("key"), address).encode("utf-8")
            else:
                status, body = 200, await self._put(headers, receive, auth_text, db, query,
                                                    address)
        except ApiError as error:
            status, body = error.status, json.dumps({"error": error.message}).encode()
            extra = [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
        except Exception as error:  # the same promise as the app's handler: JSON, no details
            log.exception("unhandled error: %s", type(error).__name__)
            status, body = 500, b'{"error":"internal server error"}'
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_JSON, (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    async def _put(self, headers: dict[bytes, bytes], receive: Receive, authorization: str | None,
                   db: str, query: dict[str, str], address: str) -> bytes:
        # Authenticate before reading the body: an anonymous caller gets 401, not a read of 1 MiB.
        principal = self.services.auth.authenticate(authorization, address)
        body = await read_limited(headers, receive)
        documents = parse_entities(principal, db, body)
        return await write_entities(self.services, db, documents, flag(query.get("dry_run")))


async def read_limited(headers: dict[bytes, bytes], receive: Receive,
                       limit: int = MAX_BODY_BYTES) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is larger than {limit} bytes")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
