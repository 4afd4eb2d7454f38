"""One supervised connection per MCP server.

A supervisor task holds the SDK's `Client` open (the SDK's context must be entered and left by
the same task) and starts it again, with a growing pause, when it fails or the server process
dies. Calls from any request task go through the open client with a timeout and a limit on the
size of what comes back; a call that exceeds either is reported to the model as failed.

Containment of stdio servers: the command is run directly (never through a shell) with only
the SDK's short list of inherited variables (PATH, HOME, ...) plus the server's own `env` —
none of the service's secrets — in a working directory of its own, its stderr discarded (it
may echo user data, which must not reach the disk or the logs).
"""

import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from backend.mcp.config import ServerConfig

logger = logging.getLogger(__name__)

HttpClientFactory = Callable[[dict[str, str]], httpx2.AsyncClient]
# The OAuth flow for a server (None: the server needs none, or has its token in a header).
AuthFactory = Callable[[ServerConfig], httpx2.Auth | None]


def no_auth(config: ServerConfig) -> httpx2.Auth | None:
    return None


class McpUnavailable(RuntimeError):
    """The server is not connected (starting, restarting, disabled or failing)."""


@dataclass(frozen=True)
class DiscoveredTool:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class CallOutcome:
    status: str  # "succeeded" or "failed"
    text: str


def plain_http_client(headers: dict[str, str]) -> httpx2.AsyncClient:
    """For tests and trusted operator URLs; the app passes the egress guard's client."""
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0), trust_env=False)


def describe(error: BaseException) -> str:
    """The root of a failure in one line: task groups and wrappers peeled off."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    chain, seen = [error], 0
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and seen < 8:
        while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]
        chain.append(cause)
        seen += 1
    root = next((e for e in reversed(chain) if str(e).strip()), error)
    return f"{type(root).__name__}: {str(root).strip()[:200]}"


def _content_text(result: Any) -> str:
    """The result's content as text: text parts joined; anything else as its JSON."""
    parts: list[str] = []
    for item in result.content or []:
        text = getattr(item, "text", None)
        if isinstance(text, str):
            parts.append(text)
        else:
            parts.append(json.dumps(item.model_dump(mode="json", exclude_none=True)))
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)


class ServerConnection:
    """The live link to one server; `start()` it once, then `call()` from anywhere."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        workdir: Path,
        call_timeout: float = 30.0,
        result_limit: int = 64 * 1024,
        http_client: HttpClientFactory = plain_http_client,
        auth: AuthFactory = no_auth,
        restart_delays: tuple[float, ...] = (0.5, 1, 2, 5, 10, 30),
        ping_interval: float = 10.0,
    ) -> None:
        self.ping_interval = ping_interval
        self.config = config
        self.workdir = workdir
        self.call_timeout = call_timeout
        self.result_limit = result_limit
        self._http_client = http_client
        self._auth = auth
        self._restart_delays = restart_delays
        self._client: Client | None = None
        self._tools: list[DiscoveredTool] = []
        self._ready = anyio.Event()
        self._stop = anyio.Event()
        self._died = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self.last_error: str | None = None
        self.restarts = 0
        self.attempts_failed = 0
        self.connected_at: float | None = None

    # --- state -----------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self._client is not None

    @property
    def tools(self) -> list[DiscoveredTool]:
        return list(self._tools)

    def status(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "tools": len(self._tools),
        }

    # --- supervision -----------------------------------------------------------------------

    def _transport(self, stack: AsyncExitStack) -> Any:
        if self.config.transport == "stdio":
            assert self.config.command is not None
            self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
            params = StdioServerParameters(
                command=self.config.command,
                args=list(self.config.args),
                env=dict(self.config.env),
                cwd=self.config.cwd or str(self.workdir),
            )
            return stdio_client(params, errlog=stack.enter_context(open(os.devnull, "w")))
        assert self.config.url is not None
        client = self._http_client(dict(self.config.headers))
        if (auth := self._auth(self.config)) is not None:
            client.auth = auth
        return streamable_http_client(self.config.url, http_client=client)

    async def _session(self) -> None:
        """Connect, list tools, and stay connected until stopped or the link breaks."""
        async with AsyncExitStack() as stack:
            transport = self._transport(stack)
            client = Client(transport, read_timeout_seconds=self.call_timeout)
            async with client:
                self._tools = self._discovered(await client.list_tools())
                self._client, self.last_error = client, None
                self.connected_at = time.monotonic()
                self._died = anyio.Event()
                self._ready.set()
                logger.info(
                    "mcp_server_connected",
                    extra={"server": self.config.name, "tools": len(self._tools)},
                )
                async with anyio.create_task_group() as group:
                    group.start_soon(self._keep_alive, client, group.cancel_scope)
                    await self._died.wait()
                    group.cancel_scope.cancel()

    async def _keep_alive(self, client: Client, scope: anyio.CancelScope) -> None:
        """Ask for the tool list now and then (the protocol's ping is gone since 2026-07-28),
        so a server that died is restarted before the next call, and new tools show up."""
        while True:
            await anyio.sleep(self.ping_interval)
            try:
                with anyio.fail_after(max(self.ping_interval, 5.0)):
                    listed = await client.list_tools()
                self._tools = self._discovered(listed)
            except Exception:  # noqa: BLE001 - no answer: the link is gone
                self.last_error = "The server stopped answering"
                self._broken()
                return

    @staticmethod
    def _discovered(listed: Any) -> list[DiscoveredTool]:
        return [
            DiscoveredTool(t.name, t.description or "", dict(t.input_schema or {}))
            for t in listed.tools
        ]

    async def run(self) -> None:
        """The supervisor loop; returns when `stop()` is called."""
        attempt = 0
        with anyio.CancelScope() as scope:
            self._scope = scope
            while not self._stop.is_set():
                try:
                    await self._session()
                except Exception as error:  # noqa: BLE001 - any failure means: restart later
                    self.last_error = describe(error)
                    logger.warning(
                        "mcp_server_failed",
                        extra={"server": self.config.name, "error": type(error).__name__},
                    )
                finally:
                    self._client = None
                    self._ready = anyio.Event()
                    self.attempts_failed += 1
                if self._stop.is_set():
                    break
                delay = self._restart_delays[min(attempt, len(self._restart_delays) - 1)]
                attempt = 0 if self._recently_healthy() else attempt + 1
                self.restarts += 1
                await anyio.sleep(delay)

    def _recently_healthy(self) -> bool:
        return self.connected_at is not None and time.monotonic() - self.connected_at > 60

    def _broken(self) -> None:
        """The link is dead: no more calls on it; the supervisor reconnects."""
        self._client = None
        self._died.set()

    async def stop(self) -> None:
        self._stop.set()
        self._died.set()
        if self._scope is not None:
            self._scope.cancel()

    async def first_outcome(self, timeout: float) -> bool:
        """Connected (True), or the first attempt failed or time ran out (False)."""
        with anyio.move_on_after(timeout):
            while not self.healthy and self.attempts_failed == 0:
                await anyio.sleep(0.05)
        return self.healthy

    async def wait_ready(self, timeout: float) -> bool:
        with anyio.move_on_after(timeout):
            await self._ready.wait()
            return True
        return False

    # --- calls -----------------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallOutcome:
        client = self._client
        if client is None:
            raise McpUnavailable(f"The tool server {self.config.name!r} is not available")
        try:
            with anyio.fail_after(self.call_timeout):
                result = await client.call_tool(tool, arguments)
        except TimeoutError:
            return CallOutcome("failed", f"The tool did not answer within {self.call_timeout:g} s")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as error:
            self._broken()
            return CallOutcome("failed", f"The tool server stopped ({type(error).__name__})")
        except MCPError as error:
            if error.code == CONNECTION_CLOSED:
                self._broken()
                return CallOutcome("failed", "The tool server stopped during the call")
            return CallOutcome("failed", f"The tool call failed: {error.error.message[:500]}")
        except Exception as error:  # noqa: BLE001 - protocol errors are the tool's failure
            return CallOutcome("failed", f"The tool call failed: {str(error)[:500]}")
        text = _content_text(result)
        if len(text.encode()) > self.result_limit:
            return CallOutcome(
                "failed",
                f"The tool's result was larger than {self.result_limit} bytes and was discarded",
            )
        return CallOutcome("failed" if result.is_error else "succeeded", text)
