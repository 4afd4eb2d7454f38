"""Entity routes: DeltaDatabase's PUT/GET /entity/{db}, plus DELETE, key listing and databases."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from deltadb_dialect.server.auth import Principal, can_read, can_write
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.http import OK, json_text, read_json, services
from deltadb_dialect.server.names import check_database, check_key
from deltadb_dialect.server.store import MAX_PAGE

router = APIRouter(tags=["entities"])

_PUT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object",
            "description": "entity key -> JSON document; written all or nothing",
            "additionalProperties": True,
        }}},
    }
}
_ENTITY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad database name or key"},
    401: {"description": "missing or invalid token"},
    404: {"description": "no such entity"},
}


# GET and PUT /entity are the hot paths: they take the bare Request and read the path, query
# and token themselves (FastAPI's parameter solving costs more than the store lookup), and
# declare their parameters for the OpenAPI document by hand.
def _parameters(*names: str) -> list[dict[str, Any]]:
    declared = {
        "db": {"name": "db", "in": "path", "required": True, "schema": {"type": "string"}},
        "key": {"name": "key", "in": "query", "required": True, "schema": {"type": "string"}},
        "dry_run": {"name": "dry_run", "in": "query", "required": False,
                    "schema": {"type": "boolean", "default": False}},
    }
    return [declared[name] for name in names]


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


@router.put("/entity/{db:path}", openapi_extra={**_PUT_BODY,
            "parameters": _parameters("db", "dry_run")}, responses={
    **_ENTITY_RESPONSES, 409: {"description": "a SQL constraint refused the row"},
    413: {"description": "body over 1 MiB"}})
async def put_entities(request: Request) -> Response:
    """Create or replace entities, all or none. With ``dry_run=true``, validate and roll back."""
    await can_write(request)
    db = check_database(request.path_params["db"])
    documents = await read_json(request)
    if not isinstance(documents, dict) or not documents:
        raise ApiError(400, "body must be a JSON object of entity key -> document")
    for key in documents:
        check_key(key)
    dry_run = _flag(request.query_params.get("dry_run"))
    # Writes go to the thread pool: the commit waits for fsync.
    await run_in_threadpool(services(request).store.put, db, documents, dry_run)
    return json_text(_DRY_RUN_OK if dry_run else _OK)


_OK = json.dumps(OK, separators=(",", ":"))
_DRY_RUN_OK = json.dumps({**OK, "dry_run": True}, separators=(",", ":"))


@router.get("/entity/{db:path}", responses=_ENTITY_RESPONSES,
            openapi_extra={"parameters": _parameters("db", "key")})
async def get_entity(request: Request) -> Response:
    """The entity's JSON document, exactly as stored."""
    await can_read(request)
    db = check_database(request.path_params["db"])
    key = check_key(request.query_params.get("key"))
    # Reads stay on the event loop: a short in-memory lookup costs less than a thread hop.
    text = services(request).store.get(db, key)
    if text is None:
        raise ApiError(404, "entity not found")
    return json_text(text)


@router.delete("/entity/{db:path}", responses=_ENTITY_RESPONSES)
async def delete_entity(
    db: str, request: Request, key: str | None = None, _: Principal = Depends(can_write)
) -> dict[str, Any]:
    check_database(db)
    deleted = await run_in_threadpool(services(request).store.delete, db, check_key(key))
    if not deleted:
        raise ApiError(404, "entity not found")
    return OK


@router.get("/entities/{db:path}")
def list_entity_keys(
    db: str,
    request: Request,
    prefix: str = "",
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    cursor: str | None = None,
    _: Principal = Depends(can_read),
) -> dict[str, Any]:
    """Keys of a database in order, ``limit`` at a time; pass ``next_cursor`` for the next page."""
    check_database(db)
    keys, next_cursor = services(request).store.list_keys(db, prefix, limit, cursor)
    return {"database": db, "keys": keys, "next_cursor": next_cursor}


@router.get("/databases")
def list_databases(request: Request, _: Principal = Depends(can_read)) -> dict[str, Any]:
    """Every database: raw entity databases and SQL tables, with entity counts."""
    return {"databases": services(request).store.databases()}
