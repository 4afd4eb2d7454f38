"""JSON Schemas: listing, reading, saving (admin) and deleting (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from deltadb_dialect.server.auth import Principal, can_read, is_admin
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.http import OK, read_json, services
from deltadb_dialect.server.names import check_database
from deltadb_dialect.server.rows import generated_schema

router = APIRouter(tags=["schemas"])


@router.get("/admin/schemas")
def list_schemas(request: Request, principal: Principal = Depends(can_read)) -> dict[str, Any]:
    """Stored schemas, and the generated schema of every SQL table that has none stored.

    A key scoped to some databases sees only the schemas named like those databases.
    """
    svc = services(request)
    stored: list[dict[str, Any]] = [{**s, "generated": False} for s in svc.schemas.list()]
    stored_ids = {s["id"] for s in stored}
    generated: list[dict[str, Any]] = [{"id": name, "updated_at": None, "generated": True}
                 for name in sorted(svc.store.catalog.names()) if name not in stored_ids]
    visible = [s for s in stored + generated if principal.may_use(s["id"])]
    return {"schemas": sorted(visible, key=lambda s: s["id"])}


@router.get("/schema/{schema_id:path}")
def get_schema(schema_id: str, request: Request, principal: Principal = Depends(can_read)) -> Any:
    principal.check_database_scope(check_database(schema_id))
    svc = services(request)
    schema = svc.schemas.get(schema_id)
    if schema is None:
        table = svc.store.catalog.table(schema_id)
        if table is None:
            raise ApiError(404, "no such schema")
        schema = generated_schema(table)
    return JSONResponse(schema)


@router.put("/schema/{schema_id:path}", openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": {"type": "object"}}}}})
async def put_schema(
    schema_id: str, request: Request, principal: Principal = Depends(is_admin)
) -> Any:
    """Save a JSON Schema (validated first). A schema named like a database guards its writes."""
    principal.check_database_scope(check_database(schema_id))
    schema = await read_json(request)
    created = await run_in_threadpool(services(request).schemas.put, schema_id, schema)
    return JSONResponse({**OK, "id": schema_id}, status_code=201 if created else 200)


@router.delete("/schema/{schema_id:path}")
async def delete_schema(
    schema_id: str, request: Request, principal: Principal = Depends(is_admin)
) -> dict[str, Any]:
    principal.check_database_scope(check_database(schema_id))
    if not await run_in_threadpool(services(request).schemas.delete, schema_id):
        raise ApiError(404, "no such schema")
    return OK
