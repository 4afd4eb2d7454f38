"""Request and response bodies (pydantic v2). Field limits here are the API's input rules."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from backend.core.config import settings
from backend.core.egress import check_url
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
    # InvalidURL is a ValueError: its sentence becomes the 422's message.
    return check_url(value)


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

NewPassword = Annotated[SafeStr, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=256)]


class UserRegister(Strict):
    username: Annotated[
        SafeStr, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    ]
    email: Annotated[
        SafeStr, StringConstraints(max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    ]
    password: NewPassword
    full_name: Annotated[SafeStr, StringConstraints(max_length=255)] | None = None


class PasswordChange(Strict):
    current_password: Annotated[SafeStr, StringConstraints(min_length=1, max_length=256)]
    new_password: NewPassword


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
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - OAuth's token type, no secret
    expires_at: datetime
    csrf_token: str
    user: UserPublic
    # Set once, when this sign-in turned zero-access on (the admin requires it): show it now.
    recovery_key: str | None = None


# --- conversations and messages -------------------------------------------------------------


class ConversationCreate(Strict):
    title: Title | None = None
    default_model: ModelName | None = None


class ConversationUpdate(Strict):
    title: Title | None = None
    default_model: ModelName | None = None
    pinned: bool | None = None
    archived: bool | None = None
    tools_enabled: bool | None = None
    tool_approval: bool | None = None


class ConversationPublic(Public):
    uuid: str
    title: str | None
    default_model: str | None
    kind: str
    pinned: bool
    archived: bool
    created_at: datetime
    updated_at: datetime
    tools_enabled: bool = True
    tool_approval: bool = False
    # The message shown last: the branch on screen ends there (null: the newest message).
    current_message_uuid: str | None = None


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
    # The message this one follows (null for a first question).
    parent_uuid: str | None = None
    # Every version of this message (itself among them, oldest first): its siblings in the
    # tree. Filled in message lists and in a turn's events; empty where not looked up.
    versions: list[str] = Field(default_factory=list)


class MessagesPublic(BaseModel):
    """One page of the branch shown: the path from the first question to the message the
    conversation shows last; `count` is the whole path's length."""

    data: list[MessagePublic]
    count: int
    current_message_uuid: str | None = None


MessageRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ShowMessage(Strict):
    """Switch to the branch through this message (a version arrow): the conversation then
    shows the newest message below it."""

    message_uuid: MessageRef


class MessageCreate(Strict):
    content: Annotated[
        SafeStr,
        StringConstraints(min_length=1, max_length=settings.MAX_MESSAGE_CHARS),
        AfterValidator(_require_visible_text),
    ]
    model: ModelName | None = None
    # Where the question goes: after `parent_uuid` (default: the message shown last), or as
    # a new version of the question `edit_of` (a sibling branch, answered on its own).
    parent_uuid: MessageRef | None = None
    edit_of: MessageRef | None = None

    @field_validator("edit_of")
    @classmethod
    def _one_place(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("parent_uuid") is not None:
            raise ValueError("give either parent_uuid or edit_of, not both")
        return value


class TemporaryMessage(Strict):
    role: Literal["user", "assistant"]
    content: Annotated[
        SafeStr, StringConstraints(min_length=1, max_length=settings.MAX_MESSAGE_CHARS)
    ]


def _ends_with_a_question(messages: list[TemporaryMessage]) -> list[TemporaryMessage]:
    if messages[-1].role != "user" or not messages[-1].content.strip():
        raise ValueError("the last message must be the user's question")
    return messages


class TemporaryChatRequest(Strict):
    """A temporary chat's messages so far (the page keeps them), the last one the question."""

    messages: Annotated[
        list[TemporaryMessage],
        Field(min_length=1, max_length=200),
        AfterValidator(_ends_with_a_question),
    ]
    model: ModelName | None = None


class RegenerateRequest(Strict):
    model: ModelName | None = None
    # The answer to write a new version of (any answer, not only the last; the old one is
    # kept), or a question to answer again. Default: the message shown last.
    message_uuid: MessageRef | None = None


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
    # Whether this server lets users connect their own provider (ALLOW_USER_CONNECTIONS).
    user_connections_allowed: bool = False


class SettingsUpdate(Strict):
    """Absent fields are kept; null (or an empty string) clears a field."""

    openai_api_key: ApiKey | None = None
    openai_base_url: BaseUrl | None = None
    default_model: ModelName | None = None

    @field_validator("default_model", mode="before")
    @classmethod
    def _blank_model_clears(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class ModelPublic(BaseModel):
    id: str
    # True when the built-in offline model (the mock) answers for this name.
    offline: bool = False


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    default_model: str | None


# --- admin -------------------------------------------------------------------------------


class AdminUserPublic(UserPublic):
    # Empty means "the global list applies".
    allowed_models: list[str] = Field(default_factory=list)
    # Zero-access conversations: a password reset cannot recover their content.
    zero_access: bool = False


class AdminUsersPublic(BaseModel):
    data: list[AdminUserPublic]
    count: int


class AdminUserUpdate(Strict):
    is_active: bool | None = None
    is_admin: bool | None = None
    # A password reset: the user's sessions all end.
    password: NewPassword | None = None
    allowed_models: Annotated[list[ModelName], Field(max_length=100)] | None = None


class AdminModels(Strict):
    models: Annotated[list[ModelName], Field(min_length=1, max_length=100)]


class AdminModelsPublic(BaseModel):
    models: list[str]
    default_model: str


ConnectionName = Annotated[
    SafeStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
]
ConnectionModels = Annotated[list[ModelName], Field(max_length=200)]


class ConnectionCreate(Strict):
    name: ConnectionName
    base_url: Annotated[ApiKey, AfterValidator(_http_url)]
    api_key: ApiKey | None = None
    models: ConnectionModels = []
    enabled: bool = True


class ConnectionUpdate(Strict):
    """Absent fields are kept; an empty api_key removes the stored key."""

    name: ConnectionName | None = None
    base_url: Annotated[ApiKey, AfterValidator(_http_url)] | None = None
    api_key: ApiKey | None = None
    models: ConnectionModels | None = None
    enabled: bool | None = None


class ConnectionTest(Strict):
    """What to try: a URL and key, or a stored connection (its key unless one is given)."""

    connection_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    base_url: Annotated[ApiKey, AfterValidator(_http_url)] | None = None
    api_key: ApiKey | None = None


class ConnectionPublic(BaseModel):
    id: int
    name: str
    base_url: str
    has_api_key: bool
    api_key_hint: str | None  # the last four characters only
    models: list[str]
    enabled: bool


class ConnectionsPublic(BaseModel):
    data: list[ConnectionPublic]
    # How answers are routed, for the admin page to explain.
    server_connection: str  # "mock" or the environment's provider host
    guarded: bool  # whether GUARD_ADMIN_CONNECTIONS applies the egress guard to these


class ProviderModelsPublic(BaseModel):
    models: list[str]


# --- health and the quick chat ---------------------------------------------------------


class HealthPublic(BaseModel):
    status: Literal["ok", "error"]
    database: Literal["ok", "error"]


class LivenessPublic(BaseModel):
    status: Literal["ok"]


class ReadinessPublic(BaseModel):
    status: Literal["ok", "error"]
    database: Literal["ok", "error"]
    migrations: Literal["ok", "error"]
    # The last provider check's result; it never makes readiness fail.
    provider: Literal["ok", "error", "mock", "unchecked"]


class ProviderHealthPublic(BaseModel):
    status: Literal["ok", "error", "mock", "unchecked"]
    checked_at: datetime | None
    detail: str | None


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


# --- usage analytics and limits -----------------------------------------------------------

Day = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Limit = Annotated[int, Field(ge=0, le=10**12)]


class UsageCounts(BaseModel):
    conversations_created: int = 0
    messages_sent: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    avg_completion_ms: float | None = None


class UsageRow(UsageCounts):
    day: str
    model: str
    user_id: int | None = None
    username: str | None = None


class UsageDayTotal(UsageCounts):
    day: str


class UsageUserTotal(UsageCounts):
    user_id: int
    username: str


class UsagePublic(BaseModel):
    start: str
    end: str
    data: list[UsageRow]
    daily: list[UsageDayTotal]
    totals: UsageCounts
    # Admin view only: one line per user over the whole range.
    by_user: list[UsageUserTotal] | None = None


class UsageLimitsIn(Strict):
    """null means "no limit" on the default and "use the default" on a user."""

    daily_token_budget: Limit | None = None
    messages_per_minute: Limit | None = None
    messages_per_day: Limit | None = None
    # Storage limits: null on the default means the server's built-in default.
    max_conversations: Limit | None = None
    max_stored_bytes: Limit | None = None


class UsageLimitsPublic(BaseModel):
    user_id: int | None
    daily_token_budget: int | None
    messages_per_minute: int | None
    messages_per_day: int | None
    max_conversations: int | None = None
    max_stored_bytes: int | None = None


class MyLimitsPublic(BaseModel):
    """The limits that apply to the caller (user's own, else the default) and today's use."""

    daily_token_budget: int | None
    messages_per_minute: int | None
    messages_per_day: int | None
    tokens_today: int
    messages_this_minute: int
    messages_today: int
    max_conversations: int
    max_stored_bytes: int
    conversations: int
    stored_bytes: int
    day_resets_at: datetime
    minute_resets_at: datetime


# --- search -------------------------------------------------------------------------------


class SearchHit(BaseModel):
    kind: Literal["message", "title"]
    conversation_uuid: str
    conversation_title: str | None
    archived: bool
    message_uuid: str | None
    role: str | None
    # Plain text around the best match; `highlights` are [start, end) offsets into it.
    snippet: str
    highlights: list[tuple[int, int]]
    # The same snippet HTML-escaped, matches wrapped in <mark>.
    snippet_html: str
    score: float
    created_at: datetime


class SearchResults(BaseModel):
    query: str
    data: list[SearchHit]
    count: int
    took_ms: float


# --- snapshots ----------------------------------------------------------------------------


class SnapshotCreate(Strict):
    name: Title


class SnapshotPublic(BaseModel):
    uuid: str
    name: str
    conversation_uuid: str
    message_count: int
    created_at: datetime


class SnapshotsPublic(BaseModel):
    data: list[SnapshotPublic]
    count: int


class SnapshotMessage(BaseModel):
    role: str
    content: str
    model: str | None = None
    position: int
    created_at: datetime | None = None


class SnapshotDetail(SnapshotPublic):
    title: str | None
    default_model: str | None
    messages: list[SnapshotMessage]


class SnapshotRestore(Strict):
    # replace: the conversation takes the snapshot's state; new: a new conversation from it.
    mode: Literal["replace", "new"] = "replace"


# --- export / import ----------------------------------------------------------------------


class ExportResponse(Public):
    tokens_prompt: int | None = None
    tokens_completion: int | None = None
    tokens_total: int | None = None
    completion_time_ms: int | None = None
    finish_reason: str | None = None


class ExportMessage(BaseModel):
    uuid: str | None = None
    # The message this one follows (an export of a tree); an export without the field at
    # all is a flat history, each message following the one before.
    parent_uuid: str | None = None
    role: Literal["user", "assistant"]
    content: Annotated[SafeStr, StringConstraints(max_length=settings.MAX_MESSAGE_CHARS * 4)]
    model: str | None = None
    created_at: datetime | None = None
    response: ExportResponse | None = None


class ExportToolCall(BaseModel):
    """One entry of a conversation's tool-call log, as exported (imports keep no log)."""

    tool_name: str
    server: str | None = None
    arguments: str
    status: str
    result: str | None = None
    reason: str | None = None
    duration_ms: int | None = None
    created_at: datetime | None = None
    decided_at: datetime | None = None


class ExportConversation(BaseModel):
    uuid: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    title: Annotated[SafeStr, StringConstraints(max_length=200)] | None = None
    default_model: str | None = None
    pinned: bool = False
    archived: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    messages: list[ExportMessage] = Field(default_factory=list)
    # The message shown last (null: the newest).
    current_message_uuid: str | None = None
    tool_executions: list[ExportToolCall] = Field(default_factory=list, max_length=100_000)


class ExportFile(BaseModel):
    format: Literal["openchat-export"] = "openchat-export"
    version: Literal[1] = 1
    exported_at: datetime | None = None
    conversations: list[ExportConversation]


class ImportResult(BaseModel):
    source: Literal["openchat", "chatgpt"]
    imported: int
    skipped: int
    conversations: list[str]


class ImportJobPublic(BaseModel):
    """An import of an uploaded export running in the background, and its progress."""

    uuid: str
    filename: str
    status: Literal["uploading", "queued", "running", "done", "failed"]
    source: Literal["openchat", "chatgpt"] | None = Field(
        description="The export's format, once its first conversations are read"
    )
    bytes_total: int = Field(description="Bytes uploaded")
    bytes_read: int = Field(description="Bytes of the upload read so far")
    conversations_done: int = Field(description="Conversations of the file handled so far")
    imported: int = Field(description="Conversations added")
    messages: int = Field(description="Messages added")
    skipped_conversations: dict[str, int] = Field(description="Conversations left out, by reason")
    skipped_messages: dict[str, int] = Field(description="Messages left out, by reason")
    error: str | None = Field(description="Why a failed import stopped (what it imported stays)")
    created_at: datetime
    finished_at: datetime | None


# --- archiving ----------------------------------------------------------------------------


class ArchiveIdleRequest(Strict):
    days: Annotated[int, Field(ge=1, le=36500)]
    dry_run: bool = False


class ArchivedConversation(BaseModel):
    uuid: str
    title: str | None
    user_id: int | None
    updated_at: datetime


class ArchiveIdleResult(BaseModel):
    dry_run: bool
    count: int
    conversations: list[ArchivedConversation]


# --- tools --------------------------------------------------------------------------------


class ToolPublic(BaseModel):
    name: str
    description: str
    parameters: dict
    # For MCP tools: the server, the tool's own name there, and the admin's policy.
    server: str | None = None
    tool: str | None = None
    policy: Literal["auto", "ask", "never"] | None = None


class ToolDecision(BaseModel):
    """Optional details of a decision: edited arguments to approve, or a rejection's reason."""

    arguments: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=1000)


class ToolsPublic(BaseModel):
    data: list[ToolPublic]


class ToolExecutionPublic(BaseModel):
    uuid: str
    conversation_uuid: str
    question_uuid: str | None
    tool_name: str
    # The MCP server that offered the tool (null for built-in tools).
    server: str | None = None
    # Why a call was rejected or failed.
    reason: str | None = None
    arguments: dict | str
    # "running": an approved MCP call whose outcome is not in yet.
    status: Literal["pending", "running", "rejected", "succeeded", "failed"]
    approval: Literal["auto", "pending", "approved", "rejected"]
    result: str | None
    duration_ms: int | None
    approved_by: str | None
    model: str
    created_at: datetime
    decided_at: datetime | None


class ToolExecutionsPublic(BaseModel):
    data: list[ToolExecutionPublic]
    count: int


class ToolTurnPublic(BaseModel):
    """A turn in a conversation with tools: like ChatTurnPublic, plus the tool calls made.

    `pending` is true when a call waits for approval; then `assistant_message` is null.
    """

    conversation: ConversationPublic
    user_message: MessagePublic
    assistant_message: MessagePublic | None
    tool_executions: list[ToolExecutionPublic] = Field(default_factory=list)
    pending: bool = False


# --- zero-access conversations ----------------------------------------------------------------

Password = Annotated[SafeStr, StringConstraints(min_length=1, max_length=256)]


class ZeroAccessChange(Strict):
    """Turning the mode on or off: the account's password, as for a sign-in."""

    password: Password


class ZeroAccessRestore(Strict):
    recovery_key: Annotated[SafeStr, StringConstraints(min_length=1, max_length=64)]
    password: Password


class ZeroAccessStatus(BaseModel):
    # off, sealing (being turned on), on, opening (being turned off)
    state: Literal["off", "sealing", "on", "opening"]
    # False after an admin's password reset, until the recovery key is entered.
    session_holds_key: bool
    required: bool
    converting: bool
    cursor: str = ""


class ZeroAccessRequirement(Strict):
    """The admin's switch: zero-access conversations required for everyone, or not."""

    required: StrictBool


class ZeroAccessRequirementPublic(BaseModel):
    required: bool
    # "configuration": ZERO_ACCESS_REQUIRED is set, and wins (the switch cannot change it);
    # "admin": an admin's choice, stored in the database; "default": nobody chose yet.
    source: Literal["configuration", "admin", "default"]
    updated_at: datetime | None = None
    updated_by: str | None = None
    # Users who have not turned the mode on (asked to at their next sign-in when required).
    users_without: int


class ZeroAccessTurnedOn(BaseModel):
    recovery_key: str
    message: str


# --- folders of chats -------------------------------------------------------------------

FolderName = Annotated[
    SafeStr,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
    AfterValidator(_require_visible_text),
]


class FolderCreate(Strict):
    name: FolderName


class FolderUpdate(Strict):
    name: FolderName


class FolderPublic(Public):
    uuid: str
    name: str
    created_at: datetime
    chats: int = 0  # how many of the owner's chats it holds (archived ones included)


class FoldersPublic(BaseModel):
    data: list[FolderPublic]


class ChatFolder(Strict):
    """Where a chat goes: a folder's uuid, or null to take it out of its folder."""

    folder: Annotated[str, StringConstraints(min_length=1, max_length=36)] | None
