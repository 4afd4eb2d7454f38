"""OAuth for Streamable HTTP MCP servers, with the SDK's client support (`mcp.client.auth`).

The SDK's providers are httpx2 `Auth` flows: on a 401 they discover the authorization server,
register the client if needed, get tokens (authorization code with PKCE, or client
credentials), retry, and refresh tokens before they expire. Their requests go through the
client they are attached to, so discovery, registration and token requests pass the same
egress guard as the MCP requests.

A background connection never starts an interactive authorization: without tokens it stops
with one sentence telling the admin to authorize the server, before anything is registered.
Tokens and the registered client live in an `OAuthStore` (in the app, the server's row:
encrypted at rest like every row, never returned by the API).
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthToken
from mcp.shared.auth import OAuthClientMetadata as ClientMetadata

from backend.mcp.config import ServerConfig

CLIENT_NAME = "Open Chat"
RedirectHandler = Callable[[str], Awaitable[None]]
CallbackHandler = Callable[[], Awaitable[AuthorizationCodeResult]]


class AuthorizationNeeded(OAuthFlowError):
    """The server wants a user's authorization, which only an admin can give (in the UI)."""


class OAuthStore(Protocol):
    """Where one server's OAuth state lives: a JSON object, read and replaced whole."""

    async def load(self) -> dict[str, Any]: ...

    async def save(self, state: dict[str, Any]) -> None: ...


class StoredTokens:
    """The SDK's `TokenStorage` over an `OAuthStore`, remembering when the token expires
    (the SDK keeps that in memory only, so after a restart it would use a stale token)."""

    def __init__(self, store: OAuthStore) -> None:
        self.store = store

    async def _update(self, **fields: Any) -> None:
        state = await self.store.load()
        await self.store.save(state | fields)

    async def get_tokens(self) -> OAuthToken | None:
        tokens = (await self.store.load()).get("tokens")
        return OAuthToken.model_validate(tokens) if tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        expires_at = time.time() + int(tokens.expires_in) if tokens.expires_in else None
        await self._update(tokens=tokens.model_dump(mode="json"), expires_at=expires_at, error=None)

    async def expires_at(self) -> float | None:
        return (await self.store.load()).get("expires_at")

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        info = (await self.store.load()).get("client")
        return OAuthClientInformationFull.model_validate(info) if info else None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        await self._update(client=client_info.model_dump(mode="json", exclude_none=True))


def _refuse_redirect(name: str) -> RedirectHandler:
    async def refuse(url: str) -> None:
        raise AuthorizationNeeded(needs_authorization(name))

    return refuse


def _refuse_callback(name: str) -> CallbackHandler:
    async def refuse() -> AuthorizationCodeResult:
        raise AuthorizationNeeded(needs_authorization(name))

    return refuse


def needs_authorization(name: str) -> str:
    return (
        f"The MCP server {name!r} needs authorization: an admin authorizes it in "
        "Admin › Tool servers"
    )


class AuthorizationCodeAuth(OAuthClientProvider):
    """Authorization code with PKCE; interactive only when the admin started it."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        storage: StoredTokens,
        redirect_uri: str,
        redirect_handler: RedirectHandler | None = None,
        callback_handler: CallbackHandler | None = None,
    ) -> None:
        assert config.url is not None and config.oauth is not None
        metadata = ClientMetadata(
            redirect_uris=[redirect_uri],  # type: ignore[list-item]
            client_name=CLIENT_NAME,
            scope=config.oauth.scope,
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="client_secret_post"
            if config.oauth.client_secret
            else "none",
        )
        self.interactive = redirect_handler is not None
        super().__init__(
            config.url,
            metadata,
            storage,
            # In the background (tokens refused, refresh failed) the flow stops here.
            redirect_handler or _refuse_redirect(config.name),
            callback_handler or _refuse_callback(config.name),
        )
        self.stored, self.config = storage, config

    async def _initialize(self) -> None:
        await super()._initialize()
        oauth = self.config.oauth
        assert oauth is not None
        if oauth.client_id and self.context.client_info is None:  # registered by the admin
            self.context.client_info = OAuthClientInformationFull(
                client_id=oauth.client_id,
                client_secret=oauth.client_secret,
                redirect_uris=self.context.client_metadata.redirect_uris,
                token_endpoint_auth_method=self.context.client_metadata.token_endpoint_auth_method,
                grant_types=["authorization_code", "refresh_token"],
            )
        if self.context.current_tokens is None and not self.interactive:
            # Before any discovery: a background attempt must not register clients.
            raise AuthorizationNeeded(needs_authorization(self.config.name))
        self.context.token_expiry_time = await self.stored.expires_at()


class ClientCredentialsAuth(ClientCredentialsOAuthProvider):
    """Client credentials: tokens without anyone, re-requested when they run out."""

    def __init__(self, config: ServerConfig, *, storage: StoredTokens) -> None:
        oauth = config.oauth
        assert config.url is not None and oauth is not None
        assert oauth.client_id is not None and oauth.client_secret is not None
        super().__init__(
            config.url,
            storage,
            oauth.client_id,
            oauth.client_secret,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name, not a secret
            scope=oauth.scope,
            issuer=oauth.issuer,
        )
        self.stored = storage

    async def _initialize(self) -> None:
        await super()._initialize()
        self.context.token_expiry_time = await self.stored.expires_at()


def auth_for(
    config: ServerConfig,
    *,
    store: OAuthStore,
    redirect_uri: str,
    redirect_handler: RedirectHandler | None = None,
    callback_handler: CallbackHandler | None = None,
) -> httpx2.Auth | None:
    """The SDK auth flow for a server configured with OAuth (None for other servers)."""
    if config.oauth is None:
        return None
    storage = StoredTokens(store)
    if config.oauth.grant == "client_credentials":
        return ClientCredentialsAuth(config, storage=storage)
    return AuthorizationCodeAuth(
        config,
        storage=storage,
        redirect_uri=redirect_uri,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


def state_of(authorization_url: str) -> str:
    """The `state` the SDK put in an authorization URL (it binds the callback to the flow)."""
    values = parse_qs(urlsplit(authorization_url).query).get("state") or [""]
    return values[0]


async def connect_once(
    config: ServerConfig, *, http_client: httpx2.AsyncClient, auth: httpx2.Auth
) -> int:
    """Connect with `auth` (running its flow, interactive or not) and list the tools: the
    number of tools, once the tokens are stored."""
    assert config.url is not None
    http_client.auth = auth
    async with (
        http_client,
        Client(streamable_http_client(config.url, http_client=http_client)) as client,
    ):
        return len((await client.list_tools()).tools)
