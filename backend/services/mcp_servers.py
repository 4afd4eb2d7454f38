"""The admin's MCP servers in the database, and those read from MCP_SERVERS_FILE.

Rows hold the server's `mcpServers` entry (secrets included, encrypted at rest like every
row) and the admin's policy. What leaves this module for the API never carries the values
of environment variables or headers.
"""

import json
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.mcp.config import McpConfigError, ServerConfig, parse_server
from backend.mcp.registry import McpRegistry, ServerPolicy, usable_schema
from backend.mcp.schemas import (
    McpOAuthStatus,
    McpServerIn,
    McpServerPublic,
    McpServersPublic,
    McpServerUpdate,
    McpToolPublic,
)
from backend.models import McpServer
from backend.services.errors import BadRequest, Conflict, Forbidden, NotFound

logger = logging.getLogger(__name__)


def config_of(row: McpServer) -> ServerConfig:
    entry = json.loads(row.config)
    entry["disabled"] = not row.enabled
    return parse_server(row.name, entry)


def policy_of(row: McpServer) -> ServerPolicy:
    # str columns that hold only what a ServerPolicy wrote there (the admin API checks it)
    return ServerPolicy(
        access=row.access,  # type: ignore[arg-type]
        users=frozenset(json.loads(row.users or "[]")),
        tool_policies=json.loads(row.tool_policies or "{}"),
        default_policy=row.default_policy,  # type: ignore[arg-type]
    )


def oauth_state_of(row: McpServer) -> dict[str, Any]:
    """The server's OAuth state (tokens, registered client, authorization in progress)."""
    try:
        state = json.loads(row.oauth or "{}")
    except ValueError:  # unreadable: as if never authorized
        return {}
    return state if isinstance(state, dict) else {}


def oauth_status(row: McpServer, *, config: ServerConfig) -> McpOAuthStatus | None:
    """What the admin sees of a server's OAuth: whether it is authorized, never the tokens."""
    if config.oauth is None:
        return None
    state = oauth_state_of(row)
    pending = state.get("pending") or {}
    return McpOAuthStatus(
        authorized=bool(state.get("tokens")),
        expires_at=state.get("expires_at"),
        client_registered=bool(state.get("client")),
        pending=bool(pending) and "code" not in pending,
        error=state.get("error"),
    )


def checked_config(name: str, config: dict) -> ServerConfig:
    try:
        server = parse_server(name, config)
    except McpConfigError as error:
        raise BadRequest(str(error)) from error
    if server.transport == "stdio" and not settings.MCP_ADMIN_STDIO:
        raise Forbidden(
            "Stdio MCP servers can only be configured in MCP_SERVERS_FILE on this server"
        )
    return server


def _row(session: Session, name: str) -> McpServer:
    row = session.scalars(select(McpServer).where(McpServer.name == name)).first()
    if row is None:
        raise NotFound(f"No MCP server is named {name!r}")
    return row


def public(row: McpServer, *, registry: McpRegistry) -> McpServerPublic:
    config, policy = config_of(row), policy_of(row)
    status = registry.status().get(row.name, {})
    offered = {t.tool: t.name for t in registry.offered(username=None) if t.server == row.name}
    tools = [
        McpToolPublic(
            name=tool.name,
            qualified_name=offered.get(tool.name),
            description=tool.description,
            policy=policy.policy_of(tool.name) if usable_schema(tool) else "never",
        )
        for tool in registry.tools_of(row.name)
    ]
    return McpServerPublic(
        **config.public() | {"enabled": row.enabled},
        # a str column; pydantic checks at run time that it is one of the Literal's values
        source=row.source,  # type: ignore[arg-type]
        access=policy.access,
        users=sorted(policy.users),
        tool_policies=policy.tool_policies,
        default_policy=policy.default_policy,
        healthy=bool(status.get("healthy")),
        restarts=int(status.get("restarts", 0)),
        last_error=status.get("last_error"),
        tools=tools,
        oauth_status=oauth_status(row, config=config),
    )


def list_servers(*, session: Session, registry: McpRegistry) -> McpServersPublic:
    rows = session.scalars(select(McpServer).order_by(McpServer.name)).all()
    return McpServersPublic(data=[public(r, registry=registry) for r in rows], count=len(rows))


def runtime_servers(*, session: Session) -> list[tuple[ServerConfig, ServerPolicy]]:
    """Every configured server with its policy, for the registry to run."""
    servers = []
    for row in session.scalars(select(McpServer)).all():
        try:
            servers.append((config_of(row), policy_of(row)))
        except (McpConfigError, ValueError) as error:
            logger.warning("mcp_server_unusable", extra={"server": row.name, "error": str(error)})
    return servers


def _apply_policy(row: McpServer, body: McpServerIn | McpServerUpdate) -> None:
    if body.access is not None:
        row.access = body.access
    if body.users is not None:
        row.users = json.dumps(sorted(set(body.users)))
    if body.tool_policies is not None:
        row.tool_policies = json.dumps(body.tool_policies)
    if body.default_policy is not None:
        row.default_policy = body.default_policy
    if body.enabled is not None:
        row.enabled = body.enabled


def create_server(*, session: Session, body: McpServerIn) -> McpServer:
    config = checked_config(body.name, body.config)
    row = McpServer(name=body.name, source="admin", config=json.dumps(config.to_document()))
    _apply_policy(row, body)
    session.add(row)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict(f"An MCP server named {body.name!r} already exists") from error
    return row


def update_server(*, session: Session, name: str, body: McpServerUpdate) -> McpServer:
    row = _row(session, name)
    if body.config is not None:
        if row.source == "file":
            raise Conflict("This server comes from MCP_SERVERS_FILE: change it in that file")
        row.config = json.dumps(checked_config(name, body.config).to_document())
        row.oauth = None  # tokens were for the old configuration
    _apply_policy(row, body)
    session.commit()
    return row


def delete_server(*, session: Session, name: str) -> None:
    row = _row(session, name)
    if row.source == "file":
        raise Conflict("This server comes from MCP_SERVERS_FILE: remove it from that file")
    session.delete(row)
    session.commit()


def stored_config(*, session: Session, name: str) -> ServerConfig:
    return config_of(_row(session, name))


def sync_file_servers(*, session: Session, configs: list[ServerConfig]) -> None:
    """Rows for the file's servers (config from the file; the admin's policy kept)."""
    names = {c.name for c in configs}
    for stale in session.scalars(select(McpServer).where(McpServer.source == "file")).all():
        if stale.name not in names:
            session.delete(stale)
    for config in configs:
        document = json.dumps(config.to_document())
        row = session.scalars(select(McpServer).where(McpServer.name == config.name)).first()
        if row is None:
            session.add(
                McpServer(
                    name=config.name, source="file", config=document, enabled=config.enabled
                )
            )
        elif row.source == "file":
            if row.config != document:
                row.oauth = None  # tokens were for the old configuration
            row.config = document
        else:
            logger.warning("mcp_file_server_shadowed", extra={"server": config.name})
    try:
        session.commit()
    except IntegrityError:  # another worker wrote the same rows first
        session.rollback()
