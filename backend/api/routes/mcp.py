"""Administration of MCP servers: list, add, change, test, remove."""

from fastapi import APIRouter

from backend.api.deps import AdminUser
from backend.core.db import run_in_session
from backend.mcp import runtime
from backend.mcp.config import ServerConfig
from backend.mcp.registry import usable_schema
from backend.mcp.schemas import (
    McpProbePublic,
    McpServerIn,
    McpServerPublic,
    McpServersPublic,
    McpServerUpdate,
    McpToolPublic,
)
from backend.models import McpServer
from backend.services import mcp_servers

router = APIRouter(prefix="/admin/mcp-servers", tags=["mcp"])


async def _public(row: McpServer) -> McpServerPublic:
    await runtime.refresh()
    return mcp_servers.public(row, registry=runtime.registry)


@router.get("", response_model=McpServersPublic)
async def list_mcp_servers(admin: AdminUser) -> McpServersPublic:
    """Every configured server, its health and its tools; secrets only by name."""
    return await run_in_session(mcp_servers.list_servers, registry=runtime.registry)


@router.post("", status_code=201, response_model=McpServerPublic)
async def add_mcp_server(admin: AdminUser, body: McpServerIn) -> McpServerPublic:
    row = await run_in_session(mcp_servers.create_server, body=body)
    return await _public(row)


@router.patch("/{name}", response_model=McpServerPublic)
async def change_mcp_server(admin: AdminUser, name: str, body: McpServerUpdate) -> McpServerPublic:
    row = await run_in_session(mcp_servers.update_server, name=name, body=body)
    return await _public(row)


@router.delete("/{name}", status_code=204)
async def remove_mcp_server(admin: AdminUser, name: str) -> None:
    await run_in_session(mcp_servers.delete_server, name=name)
    await runtime.refresh()


async def _probe(config: ServerConfig) -> McpProbePublic:
    try:
        found = await runtime.registry.probe(config)
    except Exception as error:  # noqa: BLE001 - the admin sees why the test failed
        return McpProbePublic(ok=False, tools=[], error=str(error)[:300] or type(error).__name__)
    tools = [
        McpToolPublic(
            name=t.name,
            qualified_name=None,
            description=t.description,
            policy="ask" if usable_schema(t) else "never",
        )
        for t in found
    ]
    return McpProbePublic(ok=True, tools=tools)


@router.post("/{name}/test", response_model=McpProbePublic)
async def test_mcp_server(admin: AdminUser, name: str) -> McpProbePublic:
    """Connect to a configured server once and list its tools."""
    return await _probe(await run_in_session(mcp_servers.stored_config, name=name))


@router.post("/test", response_model=McpProbePublic)
async def test_new_mcp_server(admin: AdminUser, body: McpServerIn) -> McpProbePublic:
    """Try a server before adding it."""
    return await _probe(mcp_servers.checked_config(body.name, body.config))
