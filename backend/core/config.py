"""Every setting of the service, read once from the environment or `.env`."""

import secrets
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, computed_field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from backend.core.startup_errors import exit_on_configuration_error

# Stand-in secret for local development only: production and test must set their own.
DEVELOPMENT_SECRET_KEY = "changethis"


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

    LOGIN_MAX_FAILURES: int = Field(default=5, ge=1)
    LOGIN_LOCKOUT_SECONDS: int = Field(default=300, ge=1)
    MAX_REQUEST_BYTES: int = Field(default=1024 * 1024, ge=1024)
    MAX_MESSAGE_CHARS: int = Field(default=32_000, ge=1)

    # /metrics is served only when this is set, to callers sending it as a bearer token.
    METRICS_TOKEN: str | None = Field(default=None, repr=False)

    OPENAI_API_KEY: str | None = Field(default=None, repr=False)
    OPENAI_BASE_URL: str | None = None
    # None means "mock unless a real key is configured".
    MOCK_OPENAI: bool | None = None
    # Pause between streamed mock chunks, so a browser can watch an answer grow.
    MOCK_OPENAI_DELAY_MS: int = Field(default=0, ge=0, le=10_000)
    DEFAULT_MODEL: str = "gpt-4o-mini"
    # The global model list used until an admin stores one.
    AVAILABLE_MODELS: Annotated[list[str], NoDecode, BeforeValidator(_split_comma_list)] = [
        "gpt-4o-mini",
        "gpt-4o",
    ]
    LLM_TIMEOUT_SECONDS: float = Field(default=60.0, gt=0)
    # Retries of failed requests (429/5xx/connection errors) before the user sees the error.
    LLM_MAX_RETRIES: int = Field(default=1, ge=0, le=5)
    # How many earlier messages are sent to the model with each question.
    LLM_CONTEXT_MESSAGES: int = Field(default=40, ge=1)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def use_mock_llm(self) -> bool:
        if self.MOCK_OPENAI is None:
            return not self.OPENAI_API_KEY
        return self.MOCK_OPENAI

    @computed_field  # type: ignore[prop-decorator]
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
        if bool(self.ADMIN_USERNAME) != bool(self.ADMIN_PASSWORD):
            raise ValueError("ADMIN_USERNAME and ADMIN_PASSWORD must be set together")
        return self


def load_settings() -> Settings:
    with exit_on_configuration_error(database_url=None):
        return Settings()


settings = load_settings()
