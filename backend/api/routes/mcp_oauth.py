"""OAuth authorization of MCP servers: the admin starts it, the authorization server sends
the admin's browser back to the callback."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from backend.api.deps import AdminUser
from backend.core.db import run_in_session
from backend.mcp import runtime
from backend.mcp.schemas import McpAuthorizationStart
from backend.services import mcp_oauth
from backend.services.errors import BadRequest

router = APIRouter(tags=["mcp"])
CALLBACK = "mcp_oauth_callback"
Param = Annotated[str | None, Query(max_length=2048)]


@router.post("/admin/mcp-servers/{name}/oauth/start", response_model=McpAuthorizationStart)
async def start_mcp_authorization(
    admin: AdminUser, name: str, request: Request
) -> McpAuthorizationStart:
    """Begin the authorization-code flow (PKCE): open `authorization_url` in the browser;
    the authorization server sends the browser back to Open Chat's callback."""
    url = await mcp_oauth.start_authorization(
        name=name,
        redirect_uri=str(request.url_for(CALLBACK)),
        registry=runtime.registry,
        http_client=runtime.guarded_http_client,
    )
    return McpAuthorizationStart(authorization_url=url)


@router.get("/mcp-oauth/callback", name=CALLBACK, include_in_schema=False)
async def mcp_authorization_callback(
    state: Param = None,
    code: Param = None,
    iss: Param = None,
    error: Param = None,
    error_description: Param = None,
) -> RedirectResponse:
    """Where the authorization server sends the admin back. The `state` (which only the
    flow that began the authorization knows) binds the code to that flow; the code alone is
    useless without the flow's PKCE verifier."""
    if not state:
        raise BadRequest(
            "This is not an answer to an authorization: start it in Admin › Tool servers"
        )
    name = await run_in_session(
        mcp_oauth.complete_authorization,
        state=state,
        code=code,
        iss=iss,
        error=error_description or error,
    )
    settled = await mcp_oauth.wait_until_settled(name)
    outcome = "authorized" if settled.get("tokens") and not settled.get("error") else "failed"
    return RedirectResponse(f"/admin.html?oauth={outcome}&server={name}#mcp", status_code=303)
