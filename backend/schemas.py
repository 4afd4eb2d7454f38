"""Request and response bodies (pydantic v2). Field limits here are the API's input rules."""

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from backend.core.config import settings
from backend.core.security import MIN_PASSWORD_LENGTH


def _reject_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refusing it everywhere keeps backends equivalent.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _require_visible_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


SafeStr = Annotated[str, AfterValidator(_reject_nul)]
ModelName = Annotated[
    SafeStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)
]
ApiKey = Annotated[SafeStr, StringConstraints(strip_whitespace=True, max_length=512)]
BaseUrl = Annotated[ApiKey, AfterValidator(lambda url: _http_url(url) if url else url)]
Title = Annotated[SafeStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Strict(BaseModel):
    """Input bodies: unknown fields are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class MessageOut(BaseModel):
    message: str


# --- users and auth ---------------------------------------------------------------------


class UserRegister(Strict):
    username: Annotated[
        SafeStr, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    ]
    email: Annotated[
        SafeStr, StringConstraints(max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    ]
    password: Annotated[SafeStr, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=256)]
    full_name: Annotated[SafeStr, StringConstraints(max_length=255)] | None = None


class LoginRequest(Strict):
    # A username or an email address.
    username: Annotated[SafeStr, StringConstraints(min_length=1, max_length=255)]
    password: Annotated[SafeStr, StringConstraints(min_length=1, max_length=256)]


class UserPublic(Public):
    id: int
    username: str
    email: str
    full_name: str | None
    is_active: bool
    is_admin: bool
    created_at: datetime


class LoginResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    csrf_token: str
    user: UserPublic


# --- conversations and messages -------------------------------------------------------------


class ConversationCreate(Strict):
    title: Title | None = None
    default_model: ModelName | None = None


class ConversationUpdate(Strict):
    title: Title | None = None
    default_model: ModelName | None = None
    pinned: bool | None = None
    archived: bool | None = None


class ConversationPublic(Public):
    uuid: str
    title: str | None
    default_model: str | None
    kind: str
    pinned: bool
    archived: bool
    created_at: datetime
    updated_at: datetime


class ConversationsPublic(BaseModel):
    data: list[ConversationPublic]
    count: int


class ResponsePublic(Public):
    model_used: str
    tokens_prompt: int | None
    tokens_completion: int | None
    tokens_total: int | None
    completion_time_ms: int | None
    finish_reason: str | None
    created_at: datetime


class MessagePublic(Public):
    uuid: str
    role: str
    content: str
    model: str | None
    position: int
    created_at: datetime
    response: ResponsePublic | None = None


class MessagesPublic(BaseModel):
    data: list[MessagePublic]
    count: int


class MessageCreate(Strict):
    content: Annotated[
        SafeStr,
        StringConstraints(min_length=1, max_length=settings.MAX_MESSAGE_CHARS),
        AfterValidator(_require_visible_text),
    ]
    model: ModelName | None = None


class RegenerateRequest(Strict):
    model: ModelName | None = None


class ChatTurnPublic(BaseModel):
    """The result of one question: both messages, the answer's metadata and the conversation."""

    conversation: ConversationPublic
    user_message: MessagePublic
    assistant_message: MessagePublic


# --- settings and models ----------------------------------------------------------------


class SettingsPublic(BaseModel):
    openai_base_url: str | None
    default_model: str | None
    has_api_key: bool
    # The last four characters only: enough to recognise a key, useless to steal.
    api_key_hint: str | None


class SettingsUpdate(Strict):
    """Absent fields are kept; null (or an empty string) clears a field."""

    openai_api_key: ApiKey | None = None
    openai_base_url: BaseUrl | None = None
    default_model: ModelName | None = None


class ModelPublic(BaseModel):
    id: str


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    default_model: str | None


# --- admin -------------------------------------------------------------------------------


class AdminUserPublic(UserPublic):
    # Empty means "the global list applies".
    allowed_models: list[str] = Field(default_factory=list)


class AdminUsersPublic(BaseModel):
    data: list[AdminUserPublic]
    count: int


class AdminUserUpdate(Strict):
    is_active: bool | None = None
    is_admin: bool | None = None
    allowed_models: Annotated[list[ModelName], Field(max_length=100)] | None = None


class AdminModels(Strict):
    models: Annotated[list[ModelName], Field(min_length=1, max_length=100)]


class AdminModelsPublic(BaseModel):
    models: list[str]
    default_model: str


# --- health and the seed-004 quick chat ------------------------------------------------


class HealthPublic(BaseModel):
    status: Literal["ok", "error"]
    database: Literal["ok", "error"]


class ServerConfigPublic(BaseModel):
    allow_registration: bool
    allow_anonymous_chat: bool
    mock_llm: bool
    default_model: str
    max_message_chars: int


class QuickChatRequest(BaseModel):
    message: Annotated[
        SafeStr,
        StringConstraints(min_length=1, max_length=settings.MAX_MESSAGE_CHARS),
        AfterValidator(_require_visible_text),
    ]


class QuickChatReply(BaseModel):
    status: Literal["Success"] = "Success"
    response: str


class QuickChatExchange(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    user: str
    ai: str | None = Field(serialization_alias="AI")
