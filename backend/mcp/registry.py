"""The tools every configured MCP server offers, under names that cannot collide.

The registry owns one `ServerConnection` per enabled server, started in the application's
task group, and the admin's policy for each: who may use the server, and per tool whether
it may run without asking, must be approved, or is never offered. Built-in tool names
have no `__`, and every MCP tool is offered as `<server>__<tool>`, so no name is ambiguous.
"""

import hashlib
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup
from jsonschema import SchemaError
from jsonschema.validators import validator_for

from backend.mcp.config import ServerConfig
from backend.mcp.connection import (
    AuthFactory,
    CallOutcome,
    DiscoveredTool,
    HttpClientFactory,
    ServerConnection,
    no_auth,
    plain_http_client,
)

logger = logging.getLogger(__name__)

Policy = Literal["auto", "ask", "never"]
POLICIES: tuple[Policy, ...] = ("auto", "ask", "never")
SEPARATOR = "__"
UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ServerPolicy:
    """The admin's rules for one server."""

    access: Literal["everyone", "none", "users"] = "everyone"
    users: frozenset[str] = frozenset()
    tool_policies: dict[str, Policy] = field(default_factory=dict)
    default_policy: Policy = "ask"

    def allows(self, username: str | None) -> bool:
        if self.access == "everyone":
            return True
        return self.access == "users" and username is not None and username in self.users

    def policy_of(self, tool: str) -> Policy:
        return self.tool_policies.get(tool, self.default_policy)


@dataclass(frozen=True)
class OfferedTool:
    name: str  # the qualified name the model sees
    server: str
    tool: str
    description: str
    parameters: dict[str, Any]
    policy: Policy

    def openai(self) -> dict[str, Any]:
        description = f"[{self.server}] {self.description}".strip()[:1024]
        function = {"name": self.name, "description": description, "parameters": self.parameters}
        return {"type": "function", "function": function}


def qualified_name(server: str, tool: str, taken: set[str]) -> str:
    """`server__tool`, made safe for OpenAI's function names (64 of [A-Za-z0-9_-])."""
    name = f"{server}{SEPARATOR}{UNSAFE.sub('_', tool)}"
    if len(name) > 64 or name in taken:
        digest = hashlib.blake2s(f"{server}/{tool}".encode(), digest_size=4).hexdigest()
        name = f"{name[:55]}_{digest}"
    return name


def usable_schema(tool: DiscoveredTool) -> dict[str, Any] | None:
    """The tool's input schema if it is a valid JSON Schema for an object, else None."""
    schema = tool.input_schema or {"type": "object", "properties": {}}
    if schema.get("type", "object") != "object":
        return None
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError:
        return None
    return schema


@dataclass
class _Entry:
    config: ServerConfig
    policy: ServerPolicy
    connection: ServerConnection


class McpRegistry:
    def __init__(
        self,
        *,
        workdir: Path,
        call_timeout: float = 30.0,
        result_limit: int = 64 * 1024,
        http_client: HttpClientFactory = plain_http_client,
        auth: AuthFactory = no_auth,
        ping_interval: float = 10.0,
    ) -> None:
        self.workdir = workdir
        self.auth = auth
        self.call_timeout = call_timeout
        self.result_limit = result_limit
        self.http_client = http_client
        self.ping_interval = ping_interval
        self._entries: dict[str, _Entry] = {}
        self._group: TaskGroup | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def attach(self, group: TaskGroup) -> None:
        """Connections run in `group` (the application's, for its lifetime)."""
        self._group = group

    def _connection(self, config: ServerConfig) -> ServerConnection:
        return ServerConnection(
            config,
            workdir=self.workdir / config.name,
            call_timeout=self.call_timeout,
            result_limit=self.result_limit,
            http_client=self.http_client,
            auth=self.auth,
            ping_interval=self.ping_interval,
        )

    async def apply(self, servers: list[tuple[ServerConfig, ServerPolicy]]) -> None:
        """Make the running set match `servers`: start new or changed ones, stop the rest."""
        wanted = {config.name: (config, policy) for config, policy in servers if config.enabled}
        for name in list(self._entries):
            entry = self._entries[name]
            if name not in wanted or wanted[name][0] != entry.config:
                del self._entries[name]
                await entry.connection.stop()
        for name, (config, policy) in wanted.items():
            if name in self._entries:
                self._entries[name].policy = policy
                continue
            connection = self._connection(config)
            self._entries[name] = _Entry(config, policy, connection)
            if self._group is not None:
                self._group.start_soon(connection.run)

    def start_soon(self, task: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `task` in the application's task group (it outlives the request)."""
        if self._group is None:
            raise RuntimeError("The MCP registry is not running")
        self._group.start_soon(task)

    async def restart(self, name: str) -> None:
        """Reconnect a server now (after it was authorized, say) instead of at its next try."""
        entry = self._entries.get(name)
        if entry is None:
            return
        await entry.connection.stop()
        entry.connection = self._connection(entry.config)
        if self._group is not None:
            self._group.start_soon(entry.connection.run)

    async def stop(self) -> None:
        for entry in self._entries.values():
            await entry.connection.stop()
        self._entries.clear()

    async def wait_ready(self, timeout: float) -> None:
        with anyio.move_on_after(timeout):
            for entry in list(self._entries.values()):
                await entry.connection.wait_ready(timeout)

    # --- the catalogue ---------------------------------------------------------------------

    def offered(self, *, username: str | None) -> list[OfferedTool]:
        """The tools `username` may be offered, from servers that are connected."""
        tools: list[OfferedTool] = []
        taken: set[str] = set()
        for server, entry in sorted(self._entries.items()):
            if not entry.policy.allows(username):
                continue
            for tool in entry.connection.tools:
                policy, schema = entry.policy.policy_of(tool.name), usable_schema(tool)
                if policy == "never" or schema is None:
                    continue
                name = qualified_name(server, tool.name, taken)
                taken.add(name)
                tools.append(
                    OfferedTool(name, server, tool.name, tool.description, schema, policy)
                )
        return tools

    def find(self, name: str, *, username: str | None) -> OfferedTool | None:
        return next((t for t in self.offered(username=username) if t.name == name), None)

    def tools_of(self, server: str) -> list[DiscoveredTool]:
        entry = self._entries.get(server)
        return entry.connection.tools if entry else []

    def status(self) -> dict[str, dict[str, Any]]:
        return {name: entry.connection.status() for name, entry in self._entries.items()}

    # --- calls -----------------------------------------------------------------------------

    async def call(self, tool: OfferedTool, arguments: dict[str, Any]) -> CallOutcome:
        """Run an offered tool with arguments checked against its schema first."""
        validator = validator_for(tool.parameters)(tool.parameters)
        problems = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        if problems:
            return CallOutcome("failed", f"Invalid arguments: {problems[0].message[:300]}")
        entry = self._entries.get(tool.server)
        if entry is None:
            return CallOutcome("failed", f"The tool server {tool.server!r} is not configured")
        if not entry.connection.healthy:
            await entry.connection.wait_ready(min(5.0, self.call_timeout))
        try:
            return await entry.connection.call(tool.tool, arguments)
        except RuntimeError as error:
            return CallOutcome("failed", str(error))

    async def probe(self, config: ServerConfig, *, timeout: float = 20.0) -> list[DiscoveredTool]:
        """Connect once to a server (configured or not), list its tools, disconnect."""
        connection = self._connection(config)
        async with anyio.create_task_group() as group:
            group.start_soon(connection.run)
            ready = await connection.first_outcome(timeout)
            tools, error = connection.tools, connection.last_error
            await connection.stop()
        if not ready:
            raise RuntimeError(error or f"No answer from the server within {timeout:g} s")
        return tools
