"""One question and its answer, split around the model call.

`start_turn` (one short transaction) stores the question and gathers everything the model
needs; the route then awaits the model with no transaction open; `finish_turn` (another
short transaction) stores the answer. The encrypted store serializes transactions, so none
may stay open while a model thinks.
"""

from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Integer, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from backend.core.config import settings
from backend.llm.client import Completion, Provider
from backend.models import AnswerGeneration, Conversation, Message, Response, new_uuid, utcnow
from backend.schemas import (
    ChatTurnPublic,
    ConversationPublic,
    MessagePublic,
    MessagesPublic,
    ResponsePublic,
)
from backend.services import model_access, search_index, usage, user_settings
from backend.services.conversations import (
    Owner,
    delete_messages,
    get_owned_conversation,
    read_owned_conversation,
)
from backend.services.errors import BadRequest, Conflict

TITLE_MAX_CHARS = 60


@dataclass(frozen=True)
class ChatTurn:
    """Everything needed to ask the model, detached from any database session."""

    conversation_id: int
    # As it was when the turn started; finish_turn returns it with the new title and time.
    conversation: ConversationPublic
    user_message: MessagePublic
    model: str
    provider: Provider
    prompt: list[dict[str, Any]]
    owner_id: int | None  # the conversation's user (None: anonymous quick chat)
    # Set by regenerate: the old answer, removed only once the new one is complete.
    replaces_message_id: int | None = None


def derive_title(question: str) -> str:
    """A short title from the first question: no second model call, no extra cost."""
    first_line = " ".join(question.strip().splitlines()[0].split()) if question.strip() else ""
    if len(first_line) <= TITLE_MAX_CHARS:
        return first_line or "New chat"
    return first_line[:TITLE_MAX_CHARS].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


class _HistoryRow(NamedTuple):
    id: int
    role: str
    content: str
    position: int


# Statements on the per-message path are built once: building one (and its cache key) costs
# more than running it.
_RECENT_MESSAGES = (
    select(Message.id, Message.role, Message.content, Message.position)
    .where(Message.conversation_id == bindparam("conversation_id"))
    .order_by(Message.position.desc())
    .limit(bindparam("limit", type_=Integer))
)
_MESSAGE_COUNT = (
    select(func.count())
    .select_from(Message)
    .where(Message.conversation_id == bindparam("conversation_id"))
)
_MESSAGE_PAGE = (
    select(Message)
    .where(Message.conversation_id == bindparam("conversation_id"))
    .options(selectinload(Message.response))
    .order_by(Message.position)
    .limit(bindparam("limit", type_=Integer))
    .offset(bindparam("offset", type_=Integer))
)


def _recent_messages(*, session: Session, conversation_id: int) -> list[_HistoryRow]:
    """The context window, oldest first, as plain rows: cheaper than ORM objects, and this
    runs inside the store's serialized transaction."""
    values = {"conversation_id": conversation_id, "limit": settings.LLM_CONTEXT_MESSAGES}
    rows = session.connection().execute(_RECENT_MESSAGES, values).all()
    return [_HistoryRow(*row) for row in reversed(rows)]


def _as_prompt(messages: list[_HistoryRow] | list[Message]) -> list[dict[str, Any]]:
    return [{"role": message.role, "content": message.content} for message in messages]


def model_and_provider(
    *, session: Session, owner: Owner, conversation_default: str | None, override: str | None
) -> tuple[str, Provider]:
    """Which model answers, and where the request goes (the user's provider or the server's)."""
    own_settings = user_settings.settings_of(session=session, user=owner.user)
    model = model_access.resolve_model(
        session=session,
        user=owner.user,
        conversation_default=conversation_default,
        override=override,
        user_default=own_settings.default_model if own_settings else None,
    )
    provider = user_settings.provider_for(session=session, user_settings=own_settings, model=model)
    return model, provider


# Questions and answers are stored with Core statements built once: on this per-message path
# the ORM's unit of work (and building statements) cost more than the statements themselves.
_MESSAGES, _RESPONSES = Message.__table__, Response.__table__
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.id)
# An answer goes after whatever the conversation holds by now (other turns may have landed
# while the model was thinking): its position is computed by the INSERT itself.
_INSERT_ANSWER = (
    insert(_MESSAGES)
    .values(
        position=select(func.coalesce(func.max(_MESSAGES.c.position), -1) + 1)
        .where(_MESSAGES.c.conversation_id == bindparam("in_conversation"))
        .scalar_subquery()
    )
    .returning(_MESSAGES.c.id, _MESSAGES.c.position)
)
_INSERT_RESPONSE = insert(_RESPONSES)
# The answer being written is done once its answer is stored: one transaction for both.
_END_GENERATION = delete(AnswerGeneration.__table__).where(
    AnswerGeneration.__table__.c.conversation_id == bindparam("conversation_id")
)
_TOUCH_CONVERSATION = (
    update(Conversation.__table__)
    .where(Conversation.__table__.c.id == bindparam("conversation_id"))
    # COALESCE keeps a title set in the meantime (and the title as it is when given None).
    .values(
        updated_at=bindparam("now"),
        title=func.coalesce(Conversation.__table__.c.title, bindparam("title")),
    )
)


def start_turn(
    *, session: Session, owner: Owner, conversation_uuid: str, content: str, model: str | None
) -> ChatTurn:
    """Store the question and prepare the model call (the question is kept even if it fails)."""
    conversation = read_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    resolved, provider = model_and_provider(
        session=session,
        owner=owner,
        conversation_default=conversation.default_model,
        override=model,
    )
    history = _recent_messages(session=session, conversation_id=conversation.id)
    connection, now = session.connection(), utcnow()
    question = {
        "uuid": new_uuid(),
        "conversation_id": conversation.id,
        "role": "user",
        "content": content,
        "model": model,
        "position": history[-1].position + 1 if history else 0,
        "created_at": now,
    }
    question_id = connection.execute(_INSERT_MESSAGE, question).scalar_one()
    search_index.index_message(
        connection=connection,
        user_id=conversation.user_id,
        conversation_id=conversation.id,
        message_id=question_id,
        content=content,
    )
    # The title comes with the question, so a chat whose first answer is stopped or fails is
    # still named after what was asked (a title set meanwhile is kept by the COALESCE).
    title = conversation.title or derive_title(content)
    touch = {"conversation_id": conversation.id, "now": now, "title": title}
    connection.execute(_TOUCH_CONVERSATION, touch)
    public = ConversationPublic.model_validate(conversation).model_copy(
        update={"updated_at": now, "title": title}
    )
    session.commit()
    return ChatTurn(
        conversation_id=conversation.id,
        conversation=public,
        user_message=MessagePublic(**question),
        model=resolved,
        provider=provider,
        prompt=[*_as_prompt(history), {"role": "user", "content": content}][
            -settings.LLM_CONTEXT_MESSAGES :
        ],
        owner_id=conversation.user_id,
    )


def start_regeneration(
    *,
    session: Session,
    owner: Owner,
    conversation_uuid: str,
    model: str | None,
    replaces: str | None = None,
) -> ChatTurn:
    """Answer the last question again; a trailing answer is replaced when the new one lands.

    `replaces` names the answer the caller sees as the latest: if another answer is the
    latest by now (or it is not an answer at all), nothing is replaced and Conflict says so.
    """
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    history = _recent_messages(session=session, conversation_id=conversation.id)
    replaced = history.pop() if history and history[-1].role == "assistant" else None
    if replaces is not None and (replaced is None or _uuid_of(session, replaced.id) != replaces):
        raise Conflict("Only the latest answer can be answered again; reload the chat")
    if not history or history[-1].role != "user":
        raise BadRequest("There is no question to answer again in this conversation")
    resolved, provider = model_and_provider(
        session=session,
        owner=owner,
        conversation_default=conversation.default_model,
        override=model,
    )
    return ChatTurn(
        conversation_id=conversation.id,
        conversation=ConversationPublic.model_validate(conversation),
        user_message=MessagePublic.model_validate(session.get_one(Message, history[-1].id)),
        model=resolved,
        provider=provider,
        prompt=_as_prompt(history),
        replaces_message_id=replaced.id if replaced else None,
        owner_id=conversation.user_id,
    )


def _uuid_of(session: Session, message_id: int) -> str | None:
    return session.connection().scalar(select(Message.uuid).where(Message.id == message_id))


def _store_answer(*, session: Session, turn: ChatTurn, completion: Completion) -> MessagePublic:
    """INSERT the answer and its response row, count its usage; the answer as returned."""
    connection, now = session.connection(), utcnow()
    message = {
        "uuid": new_uuid(),
        "conversation_id": turn.conversation_id,
        "role": "assistant",
        "content": completion.content,
        "model": completion.model,
        "created_at": now,
    }
    inserted = connection.execute(
        _INSERT_ANSWER, {**message, "in_conversation": turn.conversation_id}
    ).one()
    message_id, message["position"] = inserted.id, inserted.position
    search_index.index_message(
        connection=connection,
        user_id=turn.owner_id,
        conversation_id=turn.conversation_id,
        message_id=message_id,
        content=completion.content,
    )
    response = {
        "model_used": completion.model,
        "tokens_prompt": completion.tokens_prompt,
        "tokens_completion": completion.tokens_completion,
        "tokens_total": completion.tokens_total,
        "completion_time_ms": completion.completion_time_ms,
        "finish_reason": completion.finish_reason,
        "created_at": now,
    }
    connection.execute(_INSERT_RESPONSE, {**response, "message_id": message_id})
    if turn.owner_id is not None:  # anonymous quick chat is not counted
        paid = turn.provider.paid_by_server
        usage.count_answer(
            connection=connection, user_id=turn.owner_id, paid_by_server=paid, **response
        )
    return MessagePublic(**message, response=ResponsePublic(**response))


def finish_turn(*, session: Session, turn: ChatTurn, completion: Completion) -> ChatTurnPublic:
    """Store a complete answer with its metadata, and title a new conversation."""
    if turn.replaces_message_id is not None:
        delete_messages(session=session, where=Message.id == turn.replaces_message_id)
    answer = _store_answer(session=session, turn=turn, completion=completion)
    title = turn.conversation.title or derive_title(turn.user_message.content)
    touch = {"conversation_id": turn.conversation_id, "now": answer.created_at, "title": title}
    session.connection().execute(_TOUCH_CONVERSATION, touch)
    if turn.owner_id is not None:  # quick chats are answered in the asking request
        session.connection().execute(_END_GENERATION, {"conversation_id": turn.conversation_id})
    session.commit()
    return ChatTurnPublic(
        conversation=turn.conversation.model_copy(
            update={"title": title, "updated_at": answer.created_at}
        ),
        user_message=turn.user_message,
        assistant_message=answer,
    )


def list_messages(
    *, session: Session, owner: Owner, conversation_uuid: str, limit: int, offset: int
) -> MessagesPublic:
    conversation = read_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    in_conversation = {"conversation_id": conversation.id}
    count = session.connection().scalar(_MESSAGE_COUNT, in_conversation) or 0
    page = {**in_conversation, "limit": limit, "offset": offset}
    messages = session.scalars(_MESSAGE_PAGE, page).all()
    return MessagesPublic(data=[MessagePublic.model_validate(m) for m in messages], count=count)


def clear_history(*, session: Session, owner: Owner, conversation_uuid: str) -> None:
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    delete_messages(session=session, where=Message.conversation_id == conversation.id)
    conversation.updated_at = utcnow()
    session.commit()
