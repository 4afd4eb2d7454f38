"""Entity routes: DeltaDatabase's PUT/GET /entity/{db}, plus DELETE, key listing and databases."""

from __future__ import annotations

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


@router.put("/entity/{db:path}", openapi_extra=_PUT_BODY, responses={
    **_ENTITY_RESPONSES, 409: {"description": "a SQL constraint refused the row"},
    413: {"description": "body over 1 MiB"}})
async def put_entities(
    db: str, request: Request, dry_run: bool = False, _: Principal = Depends(can_write)
) -> dict[str, Any]:
    """Create or replace entities. With ``dry_run=true``, validate and roll back."""
    check_database(db)
    documents = await read_json(request)
    if not isinstance(documents, dict) or not documents:
        raise ApiError(400, "body must be a JSON object of entity key -> document")
    for key in documents:
        check_key(key)
    await run_in_threadpool(services(request).store.put, db, documents, dry_run)
    return {**OK, "dry_run": True} if dry_run else OK


@router.get("/entity/{db:path}", responses=_ENTITY_RESPONSES)
def get_entity(
    db: str, request: Request, key: str | None = None, _: Principal = Depends(can_read)
) -> Response:
    """The entity's JSON document, exactly as stored."""
    check_database(db)
    text = services(request).store.get(db, check_key(key))
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
