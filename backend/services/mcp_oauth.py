"""OAuth of MCP servers in the database: the tokens' store, and the admin's authorization.

A server's OAuth state is the `oauth` column of its row (tokens, when they expire, the
client registered with the authorization server, an authorization in progress): encrypted
at rest like every row, never returned by the API. Every worker reads the same row, so an
authorization started through one worker can be completed through another: the callback
writes the code into the row and the flow, polling it, exchanges the code for tokens.
"""

import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
from mcp.shared.auth import AuthorizationCodeResult
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.db import run_in_session
from backend.mcp.config import ServerConfig
from backend.mcp.connection import describe
from backend.mcp.oauth import OAuthFlowError, auth_for, connect_once, state_of
from backend.mcp.registry import McpRegistry
from backend.models import McpServer
from backend.services import mcp_servers
from backend.services.errors import BadRequest, NotFound
from backend.services.mcp_servers import oauth_state_of

logger = logging.getLogger(__name__)

# Background connections only refresh tokens: they never send the browser anywhere, so the
# redirect URI they carry in the client's metadata is never used.
BACKGROUND_REDIRECT_URI = "http://localhost/api/mcp-oauth/callback"
# How long an authorization waits for the admin to come back from the authorization server.
AUTHORIZATION_SECONDS = 600.0
POLL_SECONDS = 0.25


def load_state(*, session: Session, name: str) -> dict[str, Any]:
    row = session.scalars(select(McpServer).where(McpServer.name == name)).first()
    return oauth_state_of(row) if row is not None else {}


def save_state(*, session: Session, name: str, state: dict[str, Any]) -> None:
    row = session.scalars(select(McpServer).where(McpServer.name == name)).first()
    if row is None:  # removed meanwhile: nothing to keep the tokens for
        return
    row.oauth = json.dumps(state)
    session.commit()


class RowStore:
    """One server's OAuth state, in its row (the SDK's token storage sits on this)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def load(self) -> dict[str, Any]:
        return await run_in_session(load_state, name=self.name)

    async def save(self, state: dict[str, Any]) -> None:
        await run_in_session(save_state, name=self.name, state=state)

    async def update(self, **fields: Any) -> None:
        await self.save(await self.load() | fields)


def background_auth(config: ServerConfig) -> httpx2.Auth | None:
    """The registry's auth: stored tokens, refreshed; never an interactive authorization."""
    return auth_for(config, store=RowStore(config.name), redirect_uri=BACKGROUND_REDIRECT_URI)


# --- the admin's authorization ---------------------------------------------------------


async def _code_for(store: RowStore, state: str) -> AuthorizationCodeResult:
    """Wait for the callback to leave the code for `state` in the row."""
    with anyio.move_on_after(AUTHORIZATION_SECONDS):
        while True:
            pending = (await store.load()).get("pending") or {}
            if not secrets.compare_digest(str(pending.get("state", "")), state):
                raise OAuthFlowError("A newer authorization of this server replaced this one")
            if pending.get("error"):
                raise OAuthFlowError(f"The authorization server said: {pending['error']}")
            if pending.get("code"):
                return AuthorizationCodeResult(
                    code=pending["code"], state=state, iss=pending.get("iss")
                )
            await anyio.sleep(POLL_SECONDS)
    raise OAuthFlowError("Nobody came back from the authorization server in time")


async def _finish(store: RowStore, state: str | None, *, error: str | None) -> None:
    """The flow is done: clear its pending authorization and note the outcome, unless a newer
    authorization has taken its place meanwhile (then that one's state is left alone)."""
    current = await store.load()
    pending = current.get("pending") or {}
    if pending and not secrets.compare_digest(str(pending.get("state", "")), state or ""):
        return
    await store.save(current | {"pending": None, "error": error})


def _registered_for(client: Any, redirect_uri: str) -> bool:
    """A client registered before can be used again if it knows this callback URL."""
    return isinstance(client, dict) and redirect_uri in (client.get("redirect_uris") or [])


async def start_authorization(
    *,
    name: str,
    redirect_uri: str,
    registry: McpRegistry,
    http_client: Callable[[dict[str, str]], httpx2.AsyncClient],
) -> str:
    """Begin the authorization-code flow for a server: the URL to send the admin to.

    The flow runs on in the application's task group: discovery and client registration
    now, then (once the callback has left the code) the token exchange; the tokens are
    stored and the server reconnected.
    """
    config: ServerConfig = await run_in_session(mcp_servers.stored_config, name=name)
    if config.oauth is None or config.oauth.grant != "authorization_code":
        raise BadRequest(f"The MCP server {name!r} is not configured for OAuth authorization")
    store = RowStore(name)
    client = (await store.load()).get("client")
    # A fresh authorization: the old tokens go; a registered client stays if it can be used.
    await store.save({"client": client} if _registered_for(client, redirect_uri) else {})
    found: dict[str, str] = {}
    ready = anyio.Event()

    async def redirect(url: str) -> None:
        found["url"], found["state"] = url, state_of(url)
        await store.update(pending={"state": found["state"], "since": time.time()})
        ready.set()

    async def callback() -> AuthorizationCodeResult:
        return await _code_for(store, found["state"])

    auth = auth_for(
        config,
        store=store,
        redirect_uri=redirect_uri,
        redirect_handler=redirect,
        callback_handler=callback,
    )
    assert auth is not None

    async def flow() -> None:
        try:
            await connect_once(config, http_client=http_client(dict(config.headers)), auth=auth)
            await _finish(store, found.get("state"), error=None)
            logger.info("mcp_server_authorized", extra={"server": name})
            await registry.restart(name)
        except Exception as error:  # noqa: BLE001 - the admin sees why, in one line
            found["error"] = describe(error)
            await _finish(store, found.get("state"), error=found["error"])
            logger.warning("mcp_authorization_failed", extra={"server": name})
        finally:
            ready.set()

    registry.start_soon(flow)
    with anyio.move_on_after(30):
        await ready.wait()
    if "url" in found:
        return found["url"]
    raise BadRequest(
        f"The authorization of {name!r} could not start: "
        f"{found.get('error') or 'no answer from its authorization server'}"
    )


def _pending_row(session: Session, state: str) -> McpServer:
    for row in session.scalars(select(McpServer).where(McpServer.oauth.is_not(None))).all():
        pending = oauth_state_of(row).get("pending") or {}
        if pending.get("state") and secrets.compare_digest(str(pending["state"]), state):
            return row
    raise NotFound(
        "This authorization is unknown or has expired: start it again in Admin › Tool servers"
    )


def complete_authorization(
    *, session: Session, state: str, code: str | None, iss: str | None, error: str | None
) -> str:
    """The authorization server sent the admin back: leave the code (or its refusal) for the
    flow waiting on it. Returns the server's name."""
    row = _pending_row(session, state)
    oauth = oauth_state_of(row)
    if error:
        oauth["pending"] = oauth["pending"] | {"error": error[:200]}
    elif code:
        oauth["pending"] = oauth["pending"] | {"code": code, "iss": iss}
    else:
        raise BadRequest("The authorization server sent neither a code nor an error")
    row.oauth = json.dumps(oauth)
    session.commit()
    return row.name


async def wait_until_settled(name: str, *, timeout: float = 20.0) -> dict[str, Any]:
    """The server's OAuth state once the flow is done with the code (or time is up)."""
    store = RowStore(name)
    with anyio.move_on_after(timeout):
        while (await store.load()).get("pending"):
            await anyio.sleep(POLL_SECONDS)
    return await store.load()
