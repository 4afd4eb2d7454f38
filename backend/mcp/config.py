"""MCP server configuration in the `{"mcpServers": {...}}` format of Claude Desktop.

A stdio server is a command with arguments, environment and working directory; a Streamable
HTTP server is a URL with headers (a bearer token is a header) or OAuth (`"oauth": {...}`: the
authorization-code grant an admin completes in the browser, or client credentials). Names
become part of the tool
names offered to the model, so they are short and plain. Every mistake is one sentence naming
the server and the field.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
Transport = Literal["stdio", "http"]
HTTP_TYPES = {"http", "streamable-http", "streamable_http", "streamableHttp"}
Grant = Literal["authorization_code", "client_credentials"]
OAUTH_KEYS = {"grant", "client_id", "client_secret", "scope", "issuer"}


class McpConfigError(ValueError):
    """A server configuration that cannot be used, said in one sentence."""


@dataclass(frozen=True)
class OAuthConfig:
    """How Open Chat gets a bearer token for the server from its authorization server.

    `authorization_code`: an admin authorizes once in the browser (PKCE; the client registers
    itself unless `client_id` is given); the tokens are then refreshed without anyone.
    `client_credentials`: a confidential client of the authorization server (`client_id`,
    `client_secret`, and the `issuer` they belong to) gets tokens by itself.
    """

    grant: Grant = "authorization_code"
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    issuer: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "grant": self.grant,
            "client_id": self.client_id,
            "scope": self.scope,
            "issuer": self.issuer,
            "has_client_secret": self.client_secret is not None,
        }

    def to_document(self) -> dict[str, Any]:
        fields = {
            "grant": self.grant,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": self.scope,
            "issuer": self.issuer,
        }
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True)
class ServerConfig:
    name: str
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    oauth: OAuthConfig | None = None
    enabled: bool = True

    def public(self) -> dict[str, Any]:
        """What the admin sees again: never the values of environment variables or headers."""
        return {
            "name": self.name,
            "transport": self.transport,
            "command": self.command,
            "args": list(self.args),
            "env_keys": sorted(self.env),
            "cwd": self.cwd,
            "url": self.url,
            "header_keys": sorted(self.headers),
            "oauth": self.oauth.public() if self.oauth else None,
            "enabled": self.enabled,
        }

    def to_document(self) -> dict[str, Any]:
        """The entry as it is stored (secrets included: the store encrypts every row)."""
        if self.transport == "stdio":
            entry: dict[str, Any] = {"command": self.command, "args": list(self.args)}
            if self.env:
                entry["env"] = dict(self.env)
            if self.cwd:
                entry["cwd"] = self.cwd
        else:
            entry = {"type": "http", "url": self.url}
            if self.headers:
                entry["headers"] = dict(self.headers)
            if self.oauth:
                entry["oauth"] = self.oauth.to_document()
        if not self.enabled:
            entry["disabled"] = True
        return entry


def _strings(value: Any, *, server: str, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise McpConfigError(f"MCP server {server!r}: {key!r} must map names to strings")
    for k, v in value.items():
        if "\x00" in k or "\x00" in v or "\n" in k or "\r" in k:
            raise McpConfigError(f"MCP server {server!r}: {key!r} has a control character")
    return dict(value)


def _stdio(name: str, entry: dict[str, Any], enabled: bool) -> ServerConfig:
    command, args = entry.get("command"), entry.get("args", [])
    if not isinstance(command, str) or not command.strip() or "\x00" in command:
        raise McpConfigError(f"MCP server {name!r}: 'command' must be a program to run")
    if not isinstance(args, list) or not all(isinstance(a, str) and "\x00" not in a for a in args):
        raise McpConfigError(f"MCP server {name!r}: 'args' must be a list of strings")
    if entry.get("oauth"):
        raise McpConfigError(f"MCP server {name!r}: 'oauth' is for HTTP servers (a 'url')")
    cwd = entry.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise McpConfigError(f"MCP server {name!r}: 'cwd' must be a directory path")
    return ServerConfig(
        name=name,
        transport="stdio",
        command=command,
        args=tuple(args),
        env=_strings(entry.get("env"), server=name, key="env"),
        cwd=cwd,
        enabled=enabled,
    )


def _http(name: str, entry: dict[str, Any], enabled: bool) -> ServerConfig:
    url = entry.get("url")
    if not isinstance(url, str) or any(c in url for c in "\r\n\x00 "):
        raise McpConfigError(f"MCP server {name!r}: 'url' must be an http(s) URL")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise McpConfigError(f"MCP server {name!r}: 'url' must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise McpConfigError(f"MCP server {name!r}: put credentials in 'headers', not in the URL")
    headers = _strings(entry.get("headers"), server=name, key="headers")
    if token := entry.get("token") or entry.get("bearer_token"):
        if not isinstance(token, str):
            raise McpConfigError(f"MCP server {name!r}: 'token' must be a string")
        headers.setdefault("Authorization", f"Bearer {token}")
    oauth = _oauth(name, entry.get("oauth"))
    if oauth and "Authorization" in headers:
        raise McpConfigError(
            f"MCP server {name!r}: use either 'oauth' or an Authorization header, not both"
        )
    return ServerConfig(
        name=name, transport="http", url=url, headers=headers, oauth=oauth, enabled=enabled
    )


def _oauth(name: str, value: Any) -> OAuthConfig | None:
    if value is None or value is False:
        return None
    if value is True:
        return OAuthConfig()
    if not isinstance(value, dict) or not set(value) <= OAUTH_KEYS:
        raise McpConfigError(
            f"MCP server {name!r}: 'oauth' is true or an object with {sorted(OAUTH_KEYS)}"
        )
    fields = _strings(value, server=name, key="oauth")
    grant = fields.pop("grant", "authorization_code")
    if grant not in ("authorization_code", "client_credentials"):
        raise McpConfigError(
            f"MCP server {name!r}: 'oauth.grant' is authorization_code or client_credentials"
        )
    confidential = all(fields.get(key) for key in ("client_id", "client_secret", "issuer"))
    if grant == "client_credentials" and not confidential:
        # The issuer too: the secret is then only ever sent to that authorization server.
        raise McpConfigError(
            f"MCP server {name!r}: the client_credentials grant needs "
            "'oauth.client_id', 'oauth.client_secret' and 'oauth.issuer'"
        )
    issuer = fields.get("issuer")
    if issuer is not None and urlsplit(issuer).scheme not in {"http", "https"}:
        raise McpConfigError(f"MCP server {name!r}: 'oauth.issuer' must be an http(s) URL")
    return OAuthConfig(grant=grant, **fields)  # type: ignore[arg-type]


def parse_server(name: Any, entry: Any) -> ServerConfig:
    if not isinstance(name, str) or not SERVER_NAME.match(name):
        raise McpConfigError(f"MCP server name {name!r} must be 1-32 letters, digits, '-' or '_'")
    if not isinstance(entry, dict):
        raise McpConfigError(f"MCP server {name!r} must be an object")
    enabled = not entry.get("disabled", False) and entry.get("enabled", True) is not False
    kind = entry.get("type") or entry.get("transport")
    if kind == "sse":
        raise McpConfigError(
            f"MCP server {name!r}: the SSE transport is deprecated; use its Streamable HTTP URL"
        )
    if "url" in entry or kind in HTTP_TYPES:
        return _http(name, entry, enabled)
    if "command" in entry or kind == "stdio":
        return _stdio(name, entry, enabled)
    raise McpConfigError(f"MCP server {name!r} needs a 'command' (stdio) or a 'url' (HTTP)")


def parse_document(document: Any) -> list[ServerConfig]:
    """Servers of a `{"mcpServers": {...}}` document (other top-level keys are ignored)."""
    if not isinstance(document, dict) or not isinstance(document.get("mcpServers", {}), dict):
        raise McpConfigError("An MCP servers file is a JSON object with an 'mcpServers' object")
    return [parse_server(name, entry) for name, entry in document.get("mcpServers", {}).items()]


def load_file(path: str | Path) -> list[ServerConfig]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        message = f"Cannot read MCP_SERVERS_FILE {str(path)!r}: {error.strerror}"
        raise McpConfigError(message) from None
    try:
        document = json.loads(text)
    except ValueError as error:
        message = f"MCP_SERVERS_FILE {str(path)!r} is not valid JSON: {error}"
        raise McpConfigError(message) from None
    return parse_document(document)
