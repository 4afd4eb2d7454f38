"""An MCP server behind OAuth, for the tests: built with the SDK's server-side auth support, it
is its own authorization server (metadata, dynamic client registration, authorization code
with PKCE, refresh tokens) plus a client-credentials grant for one confidential client, and
serves the tools only to a valid bearer token.

`--port P` (Streamable HTTP on 127.0.0.1; the authorization server's endpoints answer on
`--issuer-host`, 127.0.0.2 by default, the same port: another address, as a separate
authorization server would be), `--token-seconds N` (access tokens' lifetime),
`--client-id`/`--client-secret` (the client-credentials client). The authorization endpoint
approves at once (a user who consents), redirecting to the client with a code. The tool
`grants` reports how many tokens each grant issued.
"""

import argparse
import base64
import json
import secrets
import socket
import time
from typing import Any
from urllib.parse import parse_qs, unquote

import uvicorn
from mcp.server.auth import routes as auth_routes
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# The SDK wants HTTPS issuers except on 127.0.0.1/localhost; the tests' authorization server
# is plain HTTP on another loopback address, which is all the certificate a test needs.
auth_routes.validate_issuer_url = lambda url: None  # type: ignore[assignment]
GRANTS = {"authorization_code": 0, "refresh_token": 0, "client_credentials": 0}


class MemoryAuthorizationServer:
    """Clients, codes and tokens in memory; every authorization request is approved."""

    def __init__(self, *, token_seconds: int) -> None:
        self.token_seconds = token_seconds
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.clients[client_info.client_id or ""] = client_info

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=client.client_id or "",
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    def issue(self, *, client_id: str, scopes: list[str], grant: str) -> OAuthToken:
        GRANTS[grant] += 1
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        expires = int(time.time()) + self.token_seconds
        self.access[access] = AccessToken(
            token=access, client_id=client_id, scopes=scopes, expires_at=expires
        )
        self.refresh[refresh] = RefreshToken(token=refresh, client_id=client_id, scopes=scopes)
        return OAuthToken(
            access_token=access,
            expires_in=self.token_seconds,
            scope=" ".join(scopes) or None,
            refresh_token=refresh,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        return self.issue(
            client_id=client.client_id or "",
            scopes=authorization_code.scopes,
            grant="authorization_code",
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        token = self.refresh.get(refresh_token)
        return token if token and token.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if self.refresh.pop(refresh_token.token, None) is None:  # rotated: each is used once
            raise TokenError("invalid_grant", "refresh token already used")
        return self.issue(
            client_id=client.client_id or "",
            scopes=scopes or refresh_token.scopes,
            grant="refresh_token",
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        access = self.access.get(token)
        if access is None or (access.expires_at or 0) < time.time():
            return None
        return access

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)


class ClientCredentialsToken:
    """`POST /token` (ASGI): the client-credentials grant for the one confidential client;
    every other grant is replayed to the SDK's token endpoint."""

    def __init__(
        self, provider: MemoryAuthorizationServer, sdk_token: Route, *, client_id: str, secret: str
    ) -> None:
        self.provider, self.sdk_token = provider, sdk_token
        self.client = (client_id, secret)

    @staticmethod
    def _credentials(scope: Any, form: dict[str, str]) -> tuple[str | None, str | None]:
        """client_secret_basic (the Authorization header) or client_secret_post (the form)."""
        header = dict(scope["headers"]).get(b"authorization", b"").decode()
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return unquote(user), unquote(password)
        return form.get("client_id"), form.get("client_secret")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await self.sdk_token.app(scope, replay, send)
            return
        response: Response
        if self._credentials(scope, form) != self.client:
            response = JSONResponse({"error": "invalid_client"}, status_code=401)
        else:
            issued = self.provider.issue(
                client_id=self.client[0],
                scopes=form.get("scope", "").split(),
                grant="client_credentials",
            )
            response = JSONResponse(issued.model_dump(exclude_none=True))
        await response(scope, receive, send)


def build(*, port: int, issuer_host: str, token_seconds: int, client_id: str, secret: str) -> Any:
    base, issuer = f"http://127.0.0.1:{port}", f"http://{issuer_host}:{port}"
    provider = MemoryAuthorizationServer(token_seconds=token_seconds)
    server = MCPServer(
        "oauth-tools",
        auth_server_provider=provider,
        auth=AuthSettings(
            issuer_url=issuer,  # type: ignore[arg-type]
            resource_server_url=f"{base}/mcp",  # type: ignore[arg-type]
            validate_token_resource=False,
            client_registration_options=ClientRegistrationOptions(enabled=True),
        ),
    )

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def grants() -> str:
        """How many tokens each grant has issued."""
        return json.dumps(GRANTS)

    app = server.streamable_http_app()
    sdk_token = next(r for r in app.router.routes if getattr(r, "path", None) == "/token")
    token = ClientCredentialsToken(provider, sdk_token, client_id=client_id, secret=secret)
    app.router.routes.insert(0, Route("/token", token, methods=["POST"]))
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer-host", default="127.0.0.2")
    parser.add_argument("--token-seconds", type=int, default=3600)
    parser.add_argument("--client-id", default="machine")
    parser.add_argument("--client-secret", default="machine-secret")
    options = parser.parse_args()
    application = build(
        port=options.port,
        issuer_host=options.issuer_host,
        token_seconds=options.token_seconds,
        client_id=options.client_id,
        secret=options.client_secret,
    )
    sockets = []
    for host in ("127.0.0.1", options.issuer_host):
        listening = socket.socket()
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, options.port))
        sockets.append(listening)
    uvicorn.Server(uvicorn.Config(application, log_level="warning")).run(sockets=sockets)
