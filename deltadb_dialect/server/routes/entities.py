"""Entity routes: DeltaDatabase's PUT/GET /entity/{db}, plus DELETE, key listing and databases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from deltadb_dialect.server import fastpath
from deltadb_dialect.server.auth import Principal, can_read, can_write, client_address
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.http import OK, json_text, read_body, services
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


# GET and PUT /entity are answered by fastpath.EntityFastPath before routing; these routes
# document them (parameters declared by hand) and serve any request that bypasses it, with the
# same core functions.
def _parameters(*names: str) -> list[dict[str, Any]]:
    declared = {
        "db": {"name": "db", "in": "path", "required": True, "schema": {"type": "string"}},
        "key": {"name": "key", "in": "query", "required": True, "schema": {"type": "string"}},
        "dry_run": {"name": "dry_run", "in": "query", "required": False,
                    "schema": {"type": "boolean", "default": False}},
    }
    return [declared[name] for name in names]


@router.put("/entity/{db:path}", openapi_extra={**_PUT_BODY,
            "parameters": _parameters("db", "dry_run")}, responses={
    **_ENTITY_RESPONSES, 409: {"description": "a SQL constraint refused the row"},
    413: {"description": "body over 1 MiB"}})
async def put_entities(request: Request) -> Response:
    """Create or replace entities, all or none. With ``dry_run=true``, validate and roll back."""
    svc = services(request)
    principal = svc.auth.authenticate(request.headers.get("authorization"),
                                      client_address(request))
    body = await read_body(request)
    db = request.path_params["db"]
    documents = fastpath.parse_entities(principal, db, body)
    dry_run = fastpath.flag(request.query_params.get("dry_run"))
    body = await fastpath.write_entities(svc, db, documents, dry_run)
    return Response(body, media_type="application/json")


@router.get("/entity/{db:path}", responses=_ENTITY_RESPONSES,
            openapi_extra={"parameters": _parameters("db", "key")})
async def get_entity(request: Request) -> Response:
    """The entity's JSON document, exactly as stored."""
    text = fastpath.read_entity(services(request), request.headers.get("authorization"),
                                request.path_params["db"], request.query_params.get("key"),
                                client_address(request))
    return json_text(text)


@router.delete("/entity/{db:path}", responses=_ENTITY_RESPONSES)
async def delete_entity(
    db: str, request: Request, key: str | None = None, principal: Principal = Depends(can_write)
) -> dict[str, Any]:
    principal.check_database_scope(check_database(db))
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
    principal: Principal = Depends(can_read),
) -> dict[str, Any]:
    """Keys of a database in order, ``limit`` at a time; pass ``next_cursor`` for the next page."""
    principal.check_database_scope(check_database(db))
    keys, next_cursor = services(request).store.list_keys(db, prefix, limit, cursor)
    return {"database": db, "keys": keys, "next_cursor": next_cursor}


@router.get("/databases")
def list_databases(request: Request, principal: Principal = Depends(can_read)) -> dict[str, Any]:
    """Every database the caller may use: raw entity databases and SQL tables, with counts."""
    databases = services(request).store.databases()
    return {"databases": [d for d in databases if principal.may_use(d["name"])]}
