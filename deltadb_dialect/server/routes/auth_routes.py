"""Login, logout, the caller's identity, and API key management."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from deltadb_dialect.server.auth import Principal, authenticated, client_address, is_admin
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.http import OK, read_json, services

router = APIRouter(tags=["auth"])

_LOGIN_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object",
    "properties": {"key": {"type": "string", "description": "admin key or API key"},
                   "client_id": {"type": "string", "description": "development mode only"}},
}}}}}


@router.post("/api/login", openapi_extra=_LOGIN_BODY)
async def login(request: Request) -> dict[str, Any]:
    """Exchange a key (or, where allowed, a development client_id) for a bearer token."""
    svc = services(request)
    require_json(request)
    body = await read_json(request)
    result: dict[str, Any] = await run_in_threadpool(
        svc.auth.login, body, client_address(request), from_browser=from_browser(request))
    return result


def require_json(request: Request) -> None:
    """Logins must be ``application/json``: a cross-site form or ``text/plain`` POST, which a
    browser sends without asking the server first, is refused."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "send the login as JSON (Content-Type: application/json)")


def from_browser(request: Request) -> bool:
    """Whether a web page sent this request: browsers add ``Origin`` to every POST and
    ``Sec-Fetch-Site`` to every request; DeltaDatabase's clients send neither."""
    return "origin" in request.headers or "sec-fetch-site" in request.headers


@router.post("/api/logout")
async def logout(request: Request, principal: Principal = Depends(authenticated)) -> dict[str, Any]:
    """Revoke the token used for this request."""
    await run_in_threadpool(services(request).auth.logout, principal)
    return OK


@router.get("/api/me")
async def me(request: Request, principal: Principal = Depends(authenticated)) -> dict[str, Any]:
    mode = "development" if services(request).auth.development_mode else "production"
    return {**principal.as_json(), "mode": mode}


@router.post("/api/keys", status_code=201, openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["name", "permissions"],
        "properties": {
            "name": {"type": "string"},
            "permissions": {"type": "array", "items": {"enum": ["read", "write", "admin"]}},
            "expires_in": {"description": "seconds, or a duration such as 30d"},
            "databases": {"type": "array", "items": {"type": "string"},
                          "description": "names (or prefix*) the key may use; default all"},
        }}}}}})
async def create_api_key(request: Request, principal: Principal = Depends(is_admin)) -> Any:
    """Create an API key; its secret (``key``) is shown in this response only."""
    body = await read_json(request)
    created = await run_in_threadpool(services(request).auth.create_api_key, body, principal)
    return JSONResponse(created, status_code=201)


@router.get("/api/keys")
def list_api_keys(request: Request, principal: Principal = Depends(is_admin)) -> Any:
    """The keys within the caller's scope, as DeltaDatabase lists them (a JSON array)."""
    return JSONResponse(services(request).auth.list_api_keys(principal))


@router.delete("/api/keys/{key_id}")
async def delete_api_key(
    key_id: str, request: Request, principal: Principal = Depends(is_admin)
) -> dict[str, Any]:
    """Delete an API key (within the caller's scope) and revoke the tokens issued for it."""
    if not await run_in_threadpool(services(request).auth.delete_api_key, key_id, principal):
        raise ApiError(404, "no such API key")
    return OK
