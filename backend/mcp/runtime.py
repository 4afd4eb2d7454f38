"""The process's MCP registry, run for the application's lifetime.

Each uvicorn worker runs its own connections (a stdio server is a child of the worker). The
configuration lives in the database, so a change the admin makes through one worker reaches
the others at their next refresh (every `REFRESH_SECONDS`), and at once in the worker that
made it.
"""

import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2

from backend.core import egress
from backend.core.config import mcp_egress_policy_of, settings
from backend.core.db import run_in_session
from backend.mcp.config import load_file
from backend.mcp.registry import McpRegistry
from backend.services import mcp_oauth, mcp_servers

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 30.0


def _workdir() -> Path:
    return Path(settings.MCP_WORK_DIR or Path(tempfile.gettempdir()) / "openchat-mcp")


def guarded_http_client(headers: dict[str, str]) -> httpx2.AsyncClient:
    """HTTP MCP servers are reached like any URL someone other than the operator typed:
    resolved, checked and connected to the checked address, never redirected."""
    client = egress.guarded_client(
        policy=mcp_egress_policy_of(settings),
        timeout=httpx2.Timeout(settings.MCP_CALL_TIMEOUT_SECONDS, connect=10.0),
    )
    client.headers.update(headers)
    return client


registry = McpRegistry(
    workdir=_workdir(),
    call_timeout=settings.MCP_CALL_TIMEOUT_SECONDS,
    result_limit=settings.MCP_RESULT_MAX_BYTES,
    http_client=guarded_http_client,
    auth=mcp_oauth.background_auth,
)


async def refresh() -> None:
    """Run exactly the servers the database holds now."""
    await registry.apply(await run_in_session(mcp_servers.runtime_servers))


async def _refresh_forever() -> None:
    while True:
        await anyio.sleep(REFRESH_SECONDS)
        try:
            await refresh()
        except Exception:  # a failed refresh keeps the servers as they were
            logger.exception("mcp_refresh_failed")


def check_servers_file() -> None:
    """Refuse to start on an MCP_SERVERS_FILE that cannot be used (one sentence)."""
    if settings.MCP_SERVERS_FILE:
        load_file(settings.MCP_SERVERS_FILE)


@asynccontextmanager
async def running() -> AsyncIterator[McpRegistry]:
    """For the application's lifespan: load the file's servers, run every server."""
    if settings.MCP_SERVERS_FILE:
        # A file that cannot be used stops the start: serving without the tools the admin
        # configured would be a silent surprise. The error is one sentence.
        configs = load_file(settings.MCP_SERVERS_FILE)
        await run_in_session(mcp_servers.sync_file_servers, configs=configs)
    async with anyio.create_task_group() as group:
        registry.attach(group)
        await refresh()
        group.start_soon(_refresh_forever)
        try:
            yield registry
        finally:
            await registry.stop()
            group.cancel_scope.cancel()
