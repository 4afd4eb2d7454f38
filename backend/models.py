"""The service's tables as SQLAlchemy 2.x typed models.

Only portable column types and constraints are used, so the same models run on the
deltadb store, SQLite and PostgreSQL. Public identifiers are UUID strings; integer ids
stay internal (admin user ids excepted).
"""

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Conversation content (message text, titles, tool arguments and results, snapshots) is
# SealedText: sealed with the owner's content key for zero-access users (docs/PRIVACY.md).
from backend.core.sealing import SealedText

# Explicit constraint names keep Alembic's batch mode (SQLite, deltadb) and `alembic check`
# deterministic across dialects.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back aware datetimes.

    SQLite-family stores drop the timezone; reattaching it here keeps API timestamps
    identical on every backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo not in (None, UTC):
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every model here is mapped to a Table (the default FromClause also covers views, joins).
    __table__: ClassVar[Table]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    conversations: Mapped[list["Conversation"]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    sessions: Mapped[list["AuthSession"]] = relationship(cascade="all, delete-orphan")
    settings: Mapped["UserSettings | None"] = relationship(cascade="all, delete-orphan")
    allowed_models: Mapped[list["UserAllowedModel"]] = relationship(
        cascade="all, delete-orphan", order_by="UserAllowedModel.model_name"
    )


class AuthSession(Base):
    """A login. Only a SHA-256 of the token is kept, so a leaked table grants nothing."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Refreshed at most every few minutes (not on every request): the idle timeout's clock.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserSettings(Base):
    __tablename__ = "user_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True, index=True
    )
    # Kept as given: on deltadb every row is encrypted at rest, and the API never returns it.
    openai_api_key: Mapped[str | None] = mapped_column(String(512))
    openai_base_url: Mapped[str | None] = mapped_column(String(512))
    default_model: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AvailableModel(Base):
    """The global list of models an admin offers to everyone without a personal list."""

    __tablename__ = "available_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ServerSetting(Base):
    """A server-wide setting an admin changes in the admin UI (JSON `value`), with who changed
    it last and when (backend/services/server_settings.py)."""

    __tablename__ = "server_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProviderConnection(Base):
    """A model provider an admin connected in the UI: its URL, key and the models it offers.

    The key is stored as given: on deltadb every row is encrypted at rest, and the API shows
    only its last four characters. A model one of these offers is answered there; any other
    goes to the server's own connection (OPENAI_* from the environment) or the mock.
    """

    __tablename__ = "provider_connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base_url: Mapped[str] = mapped_column(String(512))
    api_key: Mapped[str | None] = mapped_column(String(512))
    # The models users may pick from this provider, as a JSON list of names.
    models: Mapped[str] = mapped_column(Text, default="[]")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserAllowedModel(Base):
    """A per-user allowed list; when a user has one it replaces the global list."""

    __tablename__ = "user_allowed_models"
    __table_args__ = (UniqueConstraint("user_id", "model_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(128))


class Conversation(Base):
    __tablename__ = "conversations"
    # The sidebar query: one owner's conversations, most recent first.
    __table_args__ = (Index("ix_conversations_user_id_updated_at", "user_id", "updated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_uuid)
    title: Mapped[str | None] = mapped_column(SealedText)
    default_model: Mapped[str | None] = mapped_column(String(128))
    # Null for anonymous quick chats, which are owned through `anonymous_owner` instead.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    anonymous_owner: Mapped[str | None] = mapped_column(String(64), index=True)
    # "chat" for the normal UI, "quickchat" for the single-thread quick chat routes.
    kind: Mapped[str] = mapped_column(String(16), default="chat")
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Built-in tools offered to the model; with approval on, each proposed call waits for the user.
    tools_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    tool_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The message shown last: the end of the branch on screen (a leaf, or a question whose
    # answer is being written). No foreign key: conversations and messages would depend on
    # each other. Null or gone: the newest message (backend/services/message_tree.py).
    current_message_uuid: Mapped[str | None] = mapped_column(String(36))
    # The owner's folder holding the chat, if any (no foreign key: the column is added in
    # place, and deleting a folder moves its chats out in the same transaction).
    folder_id: Mapped[int | None] = mapped_column(Integer)

    user: Mapped[User | None] = relationship(back_populates="conversations")
    messages: Mapped[list["Message"]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", order_by="Message.position"
    )


class Message(Base):
    """One question or answer: a node of the conversation's tree.

    `parent_id` is the message it follows (null for a first question); an edited question is
    a sibling of the one it edits, a regenerated answer a sibling of the answer before it.
    `position` is the order of creation within the conversation, so a parent always comes
    before its children.
    """

    __tablename__ = "messages"
    # The history query: one conversation's messages in order; also keeps positions unique.
    __table_args__ = (
        UniqueConstraint("conversation_id", "position"),
        Index("ix_messages_parent_id", "parent_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_uuid)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # No foreign key: adding one to an existing store would rebuild the table (SQLite's
    # ALTER cannot), dropping what points at it. Messages go by conversation, never alone.
    parent_id: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(SealedText)
    # On a user message: the model the user asked for; on an answer: the model that wrote it.
    model: Mapped[str | None] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    # For building trees in memory (snapshots, imports); the chat path uses parent_id.
    parent: Mapped["Message | None"] = relationship(
        remote_side="Message.id", primaryjoin="foreign(Message.parent_id) == Message.id"
    )
    response: Mapped["Response | None"] = relationship(
        back_populates="message", cascade="all, delete-orphan"
    )


class Response(Base):
    """How an assistant message was produced: one row per answer."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    model_used: Mapped[str] = mapped_column(String(128))
    tokens_prompt: Mapped[int | None] = mapped_column(Integer)
    tokens_completion: Mapped[int | None] = mapped_column(Integer)
    tokens_total: Mapped[int | None] = mapped_column(Integer)
    completion_time_ms: Mapped[int | None] = mapped_column(Integer)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message: Mapped[Message] = relationship(back_populates="response")


# --- usage, limits, snapshots, tool executions --------------------


class UsageDaily(Base):
    """One user's usage of one model on one UTC day, kept up to date as answers are stored.

    `model` is "" for counts not tied to a model (conversations created without a default).
    """

    __tablename__ = "usage_daily"
    __table_args__ = (
        UniqueConstraint("user_id", "day", "model"),
        Index("ix_usage_daily_day", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, UTC
    model: Mapped[str] = mapped_column(String(128), default="")
    conversations_created: Mapped[int] = mapped_column(Integer, default=0)
    messages_sent: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_ms_total: Mapped[int] = mapped_column(Integer, default=0)
    # Tokens charged to the server's daily budget (not those of answers from a user's own key).
    budget_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class UsageLimit(Base):
    """Daily token budget and message rates: the row without user_id is the default."""

    __tablename__ = "usage_limits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    daily_token_budget: Mapped[int | None] = mapped_column(Integer)
    messages_per_minute: Mapped[int | None] = mapped_column(Integer)
    messages_per_day: Mapped[int | None] = mapped_column(Integer)
    # Storage: null on the default row means the built-in default (settings), not unlimited.
    max_conversations: Mapped[int | None] = mapped_column(BigInteger)
    max_stored_bytes: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RateCounter(Base):
    """Questions counted in the current fixed window ("minute" or "day"), shared by processes."""

    __tablename__ = "rate_counters"
    __table_args__ = (UniqueConstraint("user_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)


class SignInCounter(Base):
    """Failed sign-ins (or registrations) counted per scope and key, shared by processes.

    Scopes: "pair" (an account from one address), "account", "address", "global", and
    "register" (registrations from one address). Keys are keyed hashes, never a name or an
    address (backend/services/throttle.py).
    """

    __tablename__ = "sign_in_counters"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    # The last failure (a fixed window's start for "global" and "register").
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # "pair" only: the last successful sign-in to the account from the address.
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConversationSnapshot(Base):
    """A named point-in-time copy of a conversation (settings and messages, as JSON)."""

    __tablename__ = "conversation_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(SealedText)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[str] = mapped_column(SealedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ToolExecution(Base):
    """One proposed tool call and what became of it (the audit log of tool use)."""

    __tablename__ = "tool_executions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    # The question that led to the call (no foreign key: clearing a history keeps the log).
    question_uuid: Mapped[str | None] = mapped_column(String(36))
    call_id: Mapped[str] = mapped_column(String(64))
    tool_name: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[str] = mapped_column(SealedText)
    # pending, rejected, succeeded or failed
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[str | None] = mapped_column(SealedText)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(128))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The MCP server that offered the tool; null for the built-in tools.
    server: Mapped[str | None] = mapped_column(String(32))
    # Why the user rejected the call (the model is told), or why it failed.
    reason: Mapped[str | None] = mapped_column(SealedText)


class McpServer(Base):
    """An MCP server the admin configured, or one read from MCP_SERVERS_FILE (`source`).

    `config` is the server's `mcpServers` entry as JSON, secrets (environment values,
    headers) included: like every row it is encrypted at rest, and the API never returns them.
    """

    __tablename__ = "mcp_servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(8), default="admin")  # "admin" or "file"
    config: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Who may use its tools: "everyone", "none", or a JSON list of usernames in `users`.
    access: Mapped[str] = mapped_column(String(16), default="everyone")
    users: Mapped[str] = mapped_column(Text, default="[]")
    # Per tool: "auto" (may run without asking), "ask" or "never"; JSON object.
    tool_policies: Mapped[str] = mapped_column(Text, default="{}")
    default_policy: Mapped[str] = mapped_column(String(8), default="ask")
    # OAuth state as JSON: tokens and when they expire, the registered client, an
    # authorization in progress. Secrets, like `config`: encrypted at rest, never returned.
    oauth: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AnswerGeneration(Base):
    """An answer being written on the server, shared by every worker process.

    The worker that runs it keeps `content` (what was streamed so far) up to date every half
    second, so a page served by any worker can show it and follow it; `stop_requested` is how
    another worker asks it to stop. The row goes in the same transaction that stores the
    finished (or stopped) answer; a failed one stays with its error until the next question.
    """

    __tablename__ = "answer_generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), unique=True
    )
    user_message_uuid: Mapped[str] = mapped_column(String(36))
    model: Mapped[str] = mapped_column(String(128))
    # running or failed
    status: Mapped[str] = mapped_column(String(16), default="running")
    content: Mapped[str] = mapped_column(SealedText, default="")
    error: Mapped[str | None] = mapped_column(Text)
    error_status: Mapped[int | None] = mapped_column(Integer)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- zero-access conversations (docs/PRIVACY.md) ------------------------------------------


class UserContentKey(Base):
    """A zero-access user's content key, only ever stored wrapped.

    Wrapped by Argon2id(password, `password_salt`) and by the recovery key shown once. The
    row exists while the mode is on or being turned on or off (`state`: "sealing" while the
    existing conversations are being sealed, "on", "opening" while they are being opened
    again); `cursor` is where the conversion stands ("table:last id").
    """

    __tablename__ = "user_content_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True, index=True
    )
    key_id: Mapped[str] = mapped_column(String(32))
    password_salt: Mapped[str] = mapped_column(String(64))  # base64
    password_wrapped: Mapped[str] = mapped_column(String(128))  # base64
    recovery_wrapped: Mapped[str] = mapped_column(String(128))  # base64
    state: Mapped[str] = mapped_column(String(16), default="sealing")
    cursor: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SessionContentKey(Base):
    """The content key held by one session, wrapped under a key derived from the session's
    token, which only the browser holds: this table, the sessions table, the store and its
    master key together open nothing. Goes with its session (sign-out, expiry, revocation)."""

    __tablename__ = "session_content_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), unique=True, index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    wrapped_key: Mapped[str] = mapped_column(String(128))  # base64
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SearchTerm(Base):
    """One word of one message, for search: a per-user inverted index kept on write.

    `term` is a lower-cased word of the message (at most 64 characters), `occurrences` how
    often it occurs there and `words` the message's length in words (for ranking). Each row
    is an entity of the store like any other, sealed on its own: it holds nothing the message
    row it points at does not already hold.
    """

    __tablename__ = "search_terms"
    # Queries read (user, term) ranges from this index alone (no table row per hit), in
    # message order (to find the messages holding several words). It is the only index keyed
    # by term: each one costs a page write per distinct word of every stored message.
    __table_args__ = (
        Index(
            "ix_search_terms_by_message",
            "user_id",
            "term",
            "message_id",
            "weight",
            "conversation_id",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    # The message's conversation (a message never moves), so archived chats can be left out.
    conversation_id: Mapped[int] = mapped_column(Integer)
    term: Mapped[str] = mapped_column(String(64))
    occurrences: Mapped[int] = mapped_column(Integer)
    words: Mapped[int] = mapped_column(Integer)
    # BM25's term part, from `occurrences` and `words`: saturated, normalised by length.
    weight: Mapped[float] = mapped_column(Float)


class Folder(Base):
    """A user's folder of chats (a chat is in at most one); names are unique per user."""

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportJob(Base):
    """An uploaded export being imported in the background, and what became of it.

    `items_done` counts the export's conversations handled by committed batches: each batch
    commits its conversations and this row together, so a restarted server resumes after the
    last one. `salt` (with SECRET_KEY) opens the encrypted upload (`import_spool`); `runner`
    and `heartbeat_at` tell whether the process running the job is still alive.
    """

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    # uploading, queued, running, done or failed
    status: Mapped[str] = mapped_column(String(16), default="uploading")
    source: Mapped[str | None] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(64))
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    # {"conversations": {reason: count}, "messages": {reason: count}}
    skipped: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    runner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
