"""Every setting of the service, read once from the environment or `.env`."""

import secrets
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, computed_field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from backend.core.egress import EgressPolicy, parse_policy
from backend.core.startup_errors import exit_on_configuration_error

# The name the built-in offline model answers under (model_used, usage, /api/models).
MOCK_MODEL = "mock"
# Stand-in secret for local development only: production and test must set their own.
DEVELOPMENT_SECRET_KEY = "changethis"  # noqa: S105 - refused outside development (below)


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _split_comma_list(value: object) -> object:
    """Accept `a,b,c` in the environment as well as a JSON list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", validate_default=True
    )

    PROJECT_NAME: str = "Open Chat"
    ENVIRONMENT: Literal["development", "production", "test"] = "development"
    # Any case, as uvicorn's --log-level takes it.
    LOG_LEVEL: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
    ] = "INFO"
    PORT: int = Field(default=8000, ge=1, le=65535)

    # Storage: the embedded encrypted store by default; sqlite:// and postgresql:// also work.
    DATABASE_URL: str = "deltadb:///./data/openchat"
    # Read by the deltadb dialect itself; declared here so it can live in `.env` too.
    DELTADB_MASTER_KEY: str | None = Field(default=None, repr=False)

    SECRET_KEY: str = Field(default=DEVELOPMENT_SECRET_KEY, repr=False)
    SESSION_TTL_MINUTES: int = Field(default=60 * 24 * 8, ge=1)
    # A session unused this long ends, whatever its absolute lifetime says.
    SESSION_IDLE_MINUTES: int = Field(default=60 * 12, ge=1)
    SESSION_COOKIE_NAME: str = "openchat_session"
    CSRF_COOKIE_NAME: str = "csrf_token"
    # None means "Secure cookies in production only", so plain-http development still works.
    COOKIE_SECURE: bool | None = None

    ADMIN_USERNAME: str | None = None
    ADMIN_PASSWORD: str | None = Field(default=None, repr=False)
    ADMIN_EMAIL: str | None = None
    ALLOW_REGISTRATION: bool = True
    # Lets callers without an account use the quick-chat routes.
    ALLOW_ANONYMOUS_CHAT: bool = False

    # Sign-in throttling (docs/SECURITY.md): failures allowed before waits start, per account
    # from one address, per account from anywhere, and per address; each further failure
    # doubles the wait, up to LOGIN_MAX_DELAY_SECONDS.
    LOGIN_FREE_FAILURES: int = Field(default=5, ge=1)
    LOGIN_ACCOUNT_FREE_FAILURES: int = Field(default=20, ge=1)
    LOGIN_ADDRESS_FREE_FAILURES: int = Field(default=50, ge=1)
    LOGIN_MAX_DELAY_SECONDS: int = Field(default=900, ge=1)
    LOGIN_GLOBAL_FAILURES_PER_MINUTE: int = Field(default=600, ge=1)
    REGISTRATIONS_PER_ADDRESS_PER_HOUR: int = Field(default=20, ge=1)
    # Password hashing (Argon2id, tens of MiB each) runs in its own bounded pool: this many
    # threads (default: the usable cores, at most 8) and this many callers waiting per thread.
    PASSWORD_HASH_THREADS: int | None = Field(default=None, ge=1, le=64)
    PASSWORD_HASH_WAITING_PER_THREAD: int = Field(default=4, ge=0, le=1000)
    MAX_REQUEST_BYTES: int = Field(default=1024 * 1024, ge=1024)
    MAX_MESSAGE_CHARS: int = Field(default=32_000, ge=1)
    # Per-user storage, until an admin sets other limits (Usage limits, default or per user).
    MAX_CONVERSATIONS_PER_USER: int = Field(default=10_000, ge=1)
    MAX_STORED_BYTES_PER_USER: int = Field(default=512 * 1024 * 1024, ge=1024)
    # Conversations (and messages) one import transaction writes before letting others in.
    IMPORT_BATCH_CONVERSATIONS: int = Field(default=200, ge=1)
    IMPORT_BATCH_MESSAGES: int = Field(default=2_000, ge=1)
    # Uploaded exports (ChatGPT's zip or conversations.json) imported as background jobs: the
    # largest accepted, and where the encrypted upload waits while it is imported.
    MAX_IMPORT_BYTES: int = Field(default=2 * 1024**3, ge=1024)
    IMPORT_SPOOL_DIR: str | None = None

    # Tools from MCP servers: a `{"mcpServers": {...}}` file (Claude Desktop's format), added
    # to those the admin configures in the UI; each call's time and result size are bounded.
    MCP_SERVERS_FILE: str | None = None
    MCP_CALL_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0, le=600)
    MCP_RESULT_MAX_BYTES: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Whether admins may add stdio servers (commands run on this host) through the API/UI;
    # off, stdio servers come only from MCP_SERVERS_FILE, which the operator owns.
    MCP_ADMIN_STDIO: bool = True
    # Streamable HTTP servers go through the egress guard (no private addresses but those in
    # EGRESS_ALLOW_PRIVATE_NETWORKS); non-empty, only these hosts or networks.
    MCP_HTTP_ALLOWLIST: Annotated[list[str], NoDecode, BeforeValidator(_split_comma_list)] = []
    # Where stdio servers get their working directories (one each, created 0700).
    MCP_WORK_DIR: str | None = None

    # Zero-access conversations (docs/PRIVACY.md): required for everyone (turned on at each
    # user's next sign-in), and how existing conversations are converted: this many rows per
    # transaction, with a pause between batches so other users' transactions get their turn.
    # Unset, an admin decides in the admin UI; set (true or false), it wins and the UI shows it
    # as fixed by the server's configuration.
    ZERO_ACCESS_REQUIRED: bool | None = None
    ZERO_ACCESS_BATCH_ROWS: int = Field(default=200, ge=1, le=100_000)
    ZERO_ACCESS_BATCH_PAUSE_MS: int = Field(default=0, ge=0, le=60_000)

    # /metrics is served only when this is set, to callers sending it as a bearer token.
    METRICS_TOKEN: str | None = Field(default=None, repr=False)

    OPENAI_API_KEY: str | None = Field(default=None, repr=False)
    OPENAI_BASE_URL: str | None = None
    # None means "mock unless a real key is configured".
    MOCK_OPENAI: bool | None = None
    # Pause between streamed mock chunks, so a browser can watch an answer grow.
    MOCK_OPENAI_DELAY_MS: int = Field(default=0, ge=0, le=10_000)
    # Unset: "mock" while the built-in mock answers, else gpt-4o-mini (see default_model).
    DEFAULT_MODEL: str | None = None
    # The global model list used until an admin stores one (unset: see available_models).
    AVAILABLE_MODELS: Annotated[list[str] | None, NoDecode, BeforeValidator(_split_comma_list)] = (
        None
    )
    # Outbound requests to URLs chosen by users (docs/SECURITY.md, "Outbound requests").
    # Off: everyone uses the server's connection, and personal keys and URLs are refused.
    ALLOW_USER_CONNECTIONS: bool = False
    # When non-empty, personal connections may only reach these hosts (`api.example.com`,
    # `*.example.com`) or networks (`203.0.113.0/24`). Private addresses stay refused.
    USER_CONNECTION_ALLOWLIST: Annotated[
        list[str], NoDecode, BeforeValidator(_split_comma_list)
    ] = []
    # Networks exempt from the private-address refusal (say, a LAN inference server). Empty.
    EGRESS_ALLOW_PRIVATE_NETWORKS: Annotated[
        list[str], NoDecode, BeforeValidator(_split_comma_list)
    ] = []
    # Whether connections an admin adds in the UI go through the same guard as users' ones.
    GUARD_ADMIN_CONNECTIONS: bool = False
    # Provider clients kept (one per distinct key and URL; they share connection pools).
    PROVIDER_CLIENT_CACHE_SIZE: int = Field(default=64, ge=1, le=10_000)
    # Token counts a provider reports are clamped to 0..this per answer.
    MAX_TOKENS_PER_ANSWER: int = Field(default=10_000_000, ge=1, le=2**31 - 1)
    LLM_TIMEOUT_SECONDS: float = Field(default=60.0, gt=0)
    # Retries of failed requests (429/5xx/connection errors) before the user sees the error.
    LLM_MAX_RETRIES: int = Field(default=1, ge=0, le=5)
    # How many earlier messages are sent to the model with each question.
    LLM_CONTEXT_MESSAGES: int = Field(default=40, ge=1)

    # mypy does not accept a decorator over @property; this is pydantic's documented form.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def use_mock_llm(self) -> bool:
        if self.MOCK_OPENAI is None:
            return not self.OPENAI_API_KEY
        return self.MOCK_OPENAI

    @property
    def default_model(self) -> str:
        """DEFAULT_MODEL, else the mock's name while it answers (so nothing claims to be a
        model that is not answering), else gpt-4o-mini."""
        if self.DEFAULT_MODEL:
            return self.DEFAULT_MODEL
        return MOCK_MODEL if self.use_mock_llm else "gpt-4o-mini"

    @property
    def available_models(self) -> list[str]:
        if self.AVAILABLE_MODELS:
            return list(self.AVAILABLE_MODELS)
        return [MOCK_MODEL] if self.use_mock_llm else ["gpt-4o-mini", "gpt-4o"]

    @computed_field  # type: ignore[prop-decorator]  # pydantic's form, as above
    @property
    def cookie_secure(self) -> bool:
        if self.COOKIE_SECURE is None:
            return self.ENVIRONMENT == "production"
        return self.COOKIE_SECURE

    def development_secret_warning(self) -> str | None:
        """What to say when the stand-in SECRET_KEY is in use (the server says it, once)."""
        if self.SECRET_KEY != DEVELOPMENT_SECRET_KEY:
            return None
        return (
            f'SECRET_KEY is "{DEVELOPMENT_SECRET_KEY}"; set it to a random value, e.g. '
            f"{secrets.token_urlsafe(32)!r}, for any environment but development."
        )

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Self:
        if self.ENVIRONMENT != "development" and (message := self.development_secret_warning()):
            raise ValueError(message)
        try:
            egress_policy_of(self)
        except ValueError as error:
            raise ValueError(
                f"USER_CONNECTION_ALLOWLIST or EGRESS_ALLOW_PRIVATE_NETWORKS: {error}"
            ) from None
        try:
            mcp_egress_policy_of(self)
        except ValueError as error:
            raise ValueError(f"MCP_HTTP_ALLOWLIST: {error}") from None
        if bool(self.ADMIN_USERNAME) != bool(self.ADMIN_PASSWORD):
            raise ValueError("ADMIN_USERNAME and ADMIN_PASSWORD must be set together")
        return self


def mcp_egress_policy_of(config: Settings) -> EgressPolicy:
    """Where Streamable HTTP MCP servers may be reached."""
    return parse_policy(
        allow_list=config.MCP_HTTP_ALLOWLIST,
        private_exemptions=config.EGRESS_ALLOW_PRIVATE_NETWORKS,
    )


def egress_policy_of(config: Settings) -> EgressPolicy:
    """Where guarded outbound requests may go, by these settings."""
    return parse_policy(
        allow_list=config.USER_CONNECTION_ALLOWLIST,
        private_exemptions=config.EGRESS_ALLOW_PRIVATE_NETWORKS,
    )


def load_settings() -> Settings:
    with exit_on_configuration_error(database_url=None):
        return Settings()


settings = load_settings()
