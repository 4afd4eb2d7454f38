"""Starting a turn: usage limits first, then the question, then the conversation's tools.

The limit check, the question's row and the counters are one transaction, so a refused
question is neither stored nor counted, and concurrent processes cannot both slip past a limit.
"""

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from backend.models import AnswerGeneration, new_uuid
from backend.services import chat, generations, quickchat, quotas, storage
from backend.services.chat import ChatTurn
from backend.services.conversations import Owner, read_owned_conversation


@dataclass(frozen=True)
class PreparedTurn:
    turn: ChatTurn
    user_id: int | None
    tools_enabled: bool
    tool_approval: bool
    # Whose MCP tool permissions apply (None for anonymous quick chats).
    username: str | None = None


def _prepared(*, owner: Owner, turn: ChatTurn) -> PreparedTurn:
    conversation = turn.conversation  # as read in the turn's transaction
    return PreparedTurn(
        turn=turn,
        user_id=owner.user.id if owner.user else None,
        username=owner.user.username if owner.user else None,
        tools_enabled=conversation.tools_enabled and conversation.kind == "chat",
        tool_approval=conversation.tool_approval,
    )


def _registered(
    *, session: Session, owner: Owner, turn: ChatTurn, left: AnswerGeneration | None
) -> PreparedTurn:
    """Register the answer in the transaction that started the turn, and commit both: the
    question (or the branch now shown) and the running answer become visible together."""
    uuid = new_uuid()
    generations.register(session=session, turn=turn, uuid=uuid, left=left)
    generations.commit_registered(session)
    return _prepared(owner=owner, turn=replace(turn, generation_uuid=uuid))


def _idle_conversation(
    *, session: Session, owner: Owner, conversation_uuid: str
) -> tuple[Row[Any], AnswerGeneration | None]:
    """One answer at a time per conversation: refused before the question is stored. The
    conversation, and the row an earlier answer left in it."""
    conversation = read_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    left = generations.ensure_idle(session=session, conversation_id=conversation.id)
    return conversation, left


def start_turn(
    *,
    session: Session,
    owner: Owner,
    conversation_uuid: str,
    content: str,
    model: str | None,
    parent_uuid: str | None = None,
    edit_of: str | None = None,
) -> PreparedTurn:
    # Reads first, writes last: on a store whose transactions take the writer lock at their
    # first write, the lock is then held only for the writes and the commit.
    conversation, left = _idle_conversation(
        session=session, owner=owner, conversation_uuid=conversation_uuid
    )
    limits = None
    if owner.user is not None:
        limits = quotas.check_budget(session=session, user_id=owner.user.id)
        storage.ensure_room(
            session=session,
            user_id=owner.user.id,
            limits=limits,
            new_bytes=storage.text_bytes(content),
        )
    turn = chat.start_turn(
        session=session,
        owner=owner,
        conversation=conversation,
        content=content,
        model=model,
        parent_uuid=parent_uuid,
        edit_of=edit_of,
    )
    if owner.user is not None and limits is not None:
        quotas.count_question(session=session, user_id=owner.user.id, limits=limits)
    return _registered(session=session, owner=owner, turn=turn, left=left)


def start_regeneration(
    *,
    session: Session,
    owner: Owner,
    conversation_uuid: str,
    model: str | None,
    replaces: str | None = None,
) -> PreparedTurn:
    _, left = _idle_conversation(session=session, owner=owner, conversation_uuid=conversation_uuid)
    if owner.user is not None:
        quotas.enforce(session=session, user_id=owner.user.id)
    turn = chat.start_regeneration(
        session=session,
        owner=owner,
        conversation_uuid=conversation_uuid,
        model=model,
        replaces=replaces,
    )
    return _registered(session=session, owner=owner, turn=turn, left=left)


def start_quick_turn(*, session: Session, owner: Owner, content: str) -> ChatTurn:
    """The quick chat, under the same limits (anonymous callers have none)."""
    if owner.user is not None:
        quotas.enforce(session=session, user_id=owner.user.id)
    return quickchat.start_quick_turn(session=session, owner=owner, content=content)
