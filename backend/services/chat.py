"""One question and its answer, split around the model call.

`start_turn` (one short transaction) stores the question and gathers everything the model
needs; the route then awaits the model with no transaction open; `finish_turn` (another
short transaction) stores the answer. The encrypted store serializes transactions, so none
may stay open while a model thinks.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
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
from backend.services import message_tree, model_access, search_index, usage, user_settings
from backend.services.conversations import (
    Owner,
    delete_messages,
    get_owned_conversation,
    read_owned_conversation,
)

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
    # The stored question the answer follows (None: a temporary chat stores none).
    question_id: int | None = None
    # A regeneration: what the conversation showed before, shown again if the new version
    # fails (the earlier versions are all kept).
    restores_uuid: str | None = None
    # The answer's shared row (`answer_generations`), when the transaction that stored the
    # question registered it too (one commit instead of two).
    generation_uuid: str | None = None


def derive_title(question: str) -> str:
    """A short title from the first question: no second model call, no extra cost."""
    first_line = " ".join(question.strip().splitlines()[0].split()) if question.strip() else ""
    if len(first_line) <= TITLE_MAX_CHARS:
        return first_line or "New chat"
    return first_line[:TITLE_MAX_CHARS].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


_MESSAGE_PAGE = (
    select(Message)
    .where(Message.id.in_(bindparam("ids", expanding=True)))
    .options(selectinload(Message.response))
    .order_by(Message.position)
)


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
_INSERT_MESSAGE = (
    insert(_MESSAGES)
    .values(position=message_tree.NEXT_POSITION)
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
        title=func.coalesce(
            Conversation.__table__.c.title,
            bindparam("title", type_=Conversation.__table__.c.title.type),  # sealed if need be
        ),
    )
)

# A question: the conversation is touched and shows it, in one statement.
_ASK_IN_CONVERSATION = _TOUCH_CONVERSATION.values(current_message_uuid=bindparam("shown"))
# An answer: touched, and shown instead of its question unless something else is shown by now.
_ANSWER_IN_CONVERSATION = _TOUCH_CONVERSATION.values(
    current_message_uuid=message_tree.SHOWN_INSTEAD
)


def _write_message(*, connection: Connection, message: dict[str, Any]) -> int:
    """INSERT one question or answer (the one place message content is written on the chat
    path); fills in its position, returns its id."""
    inserted = connection.execute(
        _INSERT_MESSAGE, {**message, "in_conversation": message["conversation_id"]}
    ).one()
    message["position"] = inserted.position
    return int(inserted.id)


def start_turn(
    *,
    session: Session,
    owner: Owner,
    conversation: Any,
    content: str,
    model: str | None,
    parent_uuid: str | None = None,
    edit_of: str | None = None,
) -> ChatTurn:
    """Write the question into `conversation` (the owner's, as read in this transaction: a row
    or the ORM object) and prepare the model call; the caller commits (the question is kept
    even if the answer fails).

    It follows the message shown last, or `parent_uuid`; with `edit_of` it is a new version
    of that question. The model sees the path it continues, and the conversation now shows it.
    """
    resolved, provider = model_and_provider(
        session=session,
        owner=owner,
        conversation_default=conversation.default_model,
        override=model,
    )
    connection, now = session.connection(), utcnow()
    parent = message_tree.parent_for_question(
        connection=connection,
        conversation_id=conversation.id,
        current_uuid=conversation.current_message_uuid,
        after=parent_uuid,
        edits=edit_of,
    )
    parent_id = parent.id if parent else None
    history = message_tree.read_context(connection=connection, leaf_id=parent_id)
    # read before the question's INSERT, which comes after every read (see turns.start_turn)
    earlier_versions = message_tree.versions(
        connection=connection, conversation_id=conversation.id, parent_ids=[parent_id]
    )[parent_id]
    question: dict[str, Any] = {
        "uuid": new_uuid(),
        "conversation_id": conversation.id,
        "parent_id": parent_id,
        "role": "user",
        "content": content,
        "model": model,
        "created_at": now,
    }
    question_id = _write_message(connection=connection, message=question)
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
    connection.execute(_ASK_IN_CONVERSATION, {**touch, "shown": question["uuid"]})
    versions = [*earlier_versions, question["uuid"]]  # the newest version comes last
    public = ConversationPublic.model_validate(conversation).model_copy(
        update={"updated_at": now, "title": title, "current_message_uuid": question["uuid"]}
    )
    return ChatTurn(
        conversation_id=conversation.id,
        conversation=public,
        user_message=MessagePublic(
            **question, parent_uuid=parent.uuid if parent else None, versions=versions
        ),
        model=resolved,
        provider=provider,
        prompt=[*history, {"role": "user", "content": content}][-settings.LLM_CONTEXT_MESSAGES :],
        owner_id=conversation.user_id,
        question_id=question_id,
    )


def start_regeneration(
    *,
    session: Session,
    owner: Owner,
    conversation_uuid: str,
    model: str | None,
    replaces: str | None = None,
) -> ChatTurn:
    """Answer a question again: a new version of its answer, the old ones kept.

    `replaces` names the answer (any, not only the last) or the question; by default, the
    message shown last. The conversation shows the question until the new answer lands.
    """
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    connection = session.connection()
    question = message_tree.question_to_answer(
        connection=connection,
        conversation_id=conversation.id,
        current_uuid=conversation.current_message_uuid,
        target=replaces,
    )
    resolved, provider = model_and_provider(
        session=session,
        owner=owner,
        conversation_default=conversation.default_model,
        override=model,
    )
    answered = message_tree.has_children(connection=connection, message_id=question.id)
    before = conversation.current_message_uuid
    message_tree.show(connection=connection, conversation_id=conversation.id, uuid=question.uuid)
    user_message = _public_messages(
        session=session, conversation_id=conversation.id, ids=[question.id]
    )[0]
    return ChatTurn(
        conversation_id=conversation.id,
        conversation=ConversationPublic.model_validate(conversation).model_copy(
            update={"current_message_uuid": question.uuid}
        ),
        user_message=user_message,
        model=resolved,
        provider=provider,
        prompt=message_tree.read_context(connection=connection, leaf_id=question.id),
        owner_id=conversation.user_id,
        question_id=question.id,
        restores_uuid=before if answered else None,
    )


def _store_answer(*, session: Session, turn: ChatTurn, completion: Completion) -> MessagePublic:
    """INSERT the answer and its response row, count its usage; the answer as returned."""
    connection, now = session.connection(), utcnow()
    # read before the writes: the store's writer lock, taken at the first write, is then
    # held for the writes and the commit only
    earlier_versions = message_tree.versions(
        connection=connection, conversation_id=turn.conversation_id, parent_ids=[turn.question_id]
    )[turn.question_id]
    message: dict[str, Any] = {
        "uuid": new_uuid(),
        "conversation_id": turn.conversation_id,
        "parent_id": turn.question_id,
        "role": "assistant",
        "content": completion.content,
        "model": completion.model,
        "created_at": now,
    }
    message_id = _write_message(connection=connection, message=message)
    search_index.index_message(
        connection=connection,
        user_id=turn.owner_id,
        conversation_id=turn.conversation_id,
        message_id=message_id,
        content=completion.content,
    )
    response: dict[str, Any] = {
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
    return MessagePublic(
        **message,
        response=ResponsePublic(**response),
        parent_uuid=turn.user_message.uuid,
        versions=[*earlier_versions, message["uuid"]],  # the newest version comes last
    )


def finish_turn(*, session: Session, turn: ChatTurn, completion: Completion) -> ChatTurnPublic:
    """Store a complete answer with its metadata, and title a new conversation."""
    answer = _store_answer(session=session, turn=turn, completion=completion)
    title = turn.conversation.title or derive_title(turn.user_message.content)
    touch = {"conversation_id": turn.conversation_id, "now": answer.created_at, "title": title}
    shown = {"shown": answer.uuid, "instead_of": turn.user_message.uuid}
    session.connection().execute(_ANSWER_IN_CONVERSATION, {**touch, **shown})
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


def abandon_turn(*, session: Session, turn: ChatTurn) -> None:
    """A regeneration failed: show again what was shown before, if nothing moved meanwhile."""
    if turn.restores_uuid is None:
        return
    message_tree.show_instead(
        connection=session.connection(),
        conversation_id=turn.conversation_id,
        shown_uuid=turn.restores_uuid,
        instead_of=turn.user_message.uuid,
    )
    session.commit()


def _public_messages(
    *, session: Session, conversation_id: int, ids: list[int]
) -> list[MessagePublic]:
    """The messages `ids` (one branch, in order) with their parents and versions: the one
    place the chat reads stored messages for the page."""
    messages = session.scalars(_MESSAGE_PAGE, {"ids": ids}).all()
    parents = {m.parent_id for m in messages}
    versions = message_tree.versions(
        connection=session.connection(), conversation_id=conversation_id, parent_ids=parents
    )
    uuids = {m.id: m.uuid for m in messages}
    missing = [p for p in parents if p is not None and p not in uuids]
    if missing:
        found = select(Message.id, Message.uuid).where(Message.id.in_(missing))
        uuids.update({row.id: row.uuid for row in session.execute(found)})
    return [
        MessagePublic.model_validate(m).model_copy(
            update={
                "parent_uuid": uuids.get(m.parent_id) if m.parent_id else None,
                "versions": versions[m.parent_id],
            }
        )
        for m in messages
    ]


def list_messages(
    *, session: Session, owner: Owner, conversation_uuid: str, limit: int, offset: int
) -> MessagesPublic:
    """A page of the branch shown (the path to the message the conversation shows last)."""
    conversation = read_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    connection = session.connection()
    leaf = message_tree.shown(
        connection=connection,
        conversation_id=conversation.id,
        current_uuid=conversation.current_message_uuid,
    )
    if leaf is None:
        return MessagesPublic(data=[], count=0)
    path = message_tree.path_ids(connection=connection, leaf_id=leaf.id)
    page = path[offset : offset + limit]
    data = _public_messages(session=session, conversation_id=conversation.id, ids=page)
    return MessagesPublic(data=data, count=len(path), current_message_uuid=leaf.uuid)


def show_message(
    *, session: Session, owner: Owner, conversation_uuid: str, message_uuid: str
) -> ConversationPublic:
    """Switch to the branch through `message_uuid`: it ends at the newest message below it."""
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    connection = session.connection()
    chosen = message_tree.node(
        connection=connection, conversation_id=conversation.id, uuid=message_uuid
    )
    leaf = message_tree.newest_leaf_below(connection=connection, message_id=chosen.id)
    # The column only: moving between versions must not move the chat in the sidebar.
    message_tree.show(connection=connection, conversation_id=conversation.id, uuid=leaf)
    session.commit()
    session.refresh(conversation)
    return ConversationPublic.model_validate(conversation)


def clear_history(*, session: Session, owner: Owner, conversation_uuid: str) -> None:
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    delete_messages(session=session, where=Message.conversation_id == conversation.id)
    conversation.updated_at, conversation.current_message_uuid = utcnow(), None
    session.commit()
