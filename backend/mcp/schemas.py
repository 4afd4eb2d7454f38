"""The MCP administration API's bodies and answers."""

from typing import Any, Literal

from pydantic import BaseModel, Field

Policy = Literal["auto", "ask", "never"]
Access = Literal["everyone", "none", "users"]


class McpServerIn(BaseModel):
    """A server as in `mcpServers`: `{"command", "args", "env"}` or `{"url", "headers"}`."""

    name: str = Field(min_length=1, max_length=32)
    config: dict[str, Any]
    enabled: bool = True
    access: Access = "everyone"
    users: list[str] = Field(default_factory=list, max_length=1000)
    tool_policies: dict[str, Policy] = Field(default_factory=dict, max_length=1000)
    default_policy: Policy = "ask"


class McpServerUpdate(BaseModel):
    """Fields to change; `config` replaces the whole entry (secrets included)."""

    config: dict[str, Any] | None = None
    enabled: bool | None = None
    access: Access | None = None
    users: list[str] | None = Field(default=None, max_length=1000)
    tool_policies: dict[str, Policy] | None = Field(default=None, max_length=1000)
    default_policy: Policy | None = None


class McpToolPublic(BaseModel):
    name: str
    qualified_name: str | None
    description: str
    policy: Policy


class McpOAuthPublic(BaseModel):
    """The OAuth settings of a server, without the client secret."""

    grant: Literal["authorization_code", "client_credentials"]
    client_id: str | None
    scope: str | None
    issuer: str | None
    has_client_secret: bool


class McpOAuthStatus(BaseModel):
    """Whether the server is authorized (the tokens themselves are never shown)."""

    authorized: bool
    expires_at: float | None
    client_registered: bool
    pending: bool
    error: str | None


class McpAuthorizationStart(BaseModel):
    authorization_url: str


class McpServerPublic(BaseModel):
    """A server as the admin sees it again: names of secrets, never their values."""

    name: str
    source: Literal["admin", "file"]
    transport: Literal["stdio", "http"]
    command: str | None
    args: list[str]
    env_keys: list[str]
    cwd: str | None
    url: str | None
    header_keys: list[str]
    oauth: McpOAuthPublic | None = None
    oauth_status: McpOAuthStatus | None = None
    enabled: bool
    access: Access
    users: list[str]
    tool_policies: dict[str, Policy]
    default_policy: Policy
    healthy: bool
    restarts: int
    last_error: str | None
    tools: list[McpToolPublic]


class McpServersPublic(BaseModel):
    data: list[McpServerPublic]
    count: int


class McpProbePublic(BaseModel):
    """What a test connection found."""

    ok: bool
    tools: list[McpToolPublic]
    error: str | None = None
