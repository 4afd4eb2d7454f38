"""Temporary chats: answered like any other, and never stored.

The page keeps the messages and sends them with each question. Nothing of the chat is written
to the store: no conversation, message or answer row, no answer being written for followers.
What is written are the numbers every answer adds to the user's limits and usage (a question
counted against the rate limits, tokens per model and day), never a word of the chat.
"""

from typing import Any

from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.core.db import run_quick_in_session
from backend.llm.client import Completion
from backend.models import User, new_uuid, utcnow
from backend.schemas import (
    ChatTurnPublic,
    ConversationPublic,
    MessagePublic,
    ResponsePublic,
    TemporaryChatRequest,
)
from backend.services import chat, quotas, usage
from backend.services.chat import ChatTurn
from backend.services.conversations import Owner

KIND = "temporary"


def start_temporary_turn(*, session: Session, user: User, body: TemporaryChatRequest) -> ChatTurn:
    """Count the question (limits first) and prepare the model call; nothing else is written."""
    quotas.enforce(session=session, user_id=user.id)
    model, provider = chat.model_and_provider(
        session=session, owner=Owner(user=user), conversation_default=None, override=body.model
    )
    session.commit()
    now, question = utcnow(), body.messages[-1]
    conversation = ConversationPublic(
        uuid=KIND,
        title=chat.derive_title(question.content),
        default_model=None,
        kind=KIND,
        pinned=False,
        archived=False,
        created_at=now,
        updated_at=now,
    )
    user_message = MessagePublic(
        uuid=new_uuid(),
        role="user",
        content=question.content,
        model=body.model,
        position=len(body.messages) - 1,
        created_at=now,
    )
    prompt: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in body.messages]
    return ChatTurn(
        conversation_id=0,
        conversation=conversation,
        user_message=user_message,
        model=model,
        provider=provider,
        prompt=prompt[-settings.LLM_CONTEXT_MESSAGES :],
        owner_id=user.id,
    )


def _count(*, session: Session, user_id: int, response: dict[str, Any]) -> None:
    usage.count_answer(connection=session.connection(), user_id=user_id, **response)
    session.commit()


async def keep_nothing(turn: ChatTurn, completion: Completion) -> ChatTurnPublic:
    """The answer as the page shows it; only its usage is counted."""
    now = utcnow()
    response: dict[str, Any] = {
        "model_used": completion.model,
        "tokens_prompt": completion.tokens_prompt,
        "tokens_completion": completion.tokens_completion,
        "tokens_total": completion.tokens_total,
        "completion_time_ms": completion.completion_time_ms,
        "finish_reason": completion.finish_reason,
        "created_at": now,
    }
    assert turn.owner_id is not None
    await run_quick_in_session(_count, user_id=turn.owner_id, response=response)
    answer = MessagePublic(
        uuid=new_uuid(),
        role="assistant",
        content=completion.content,
        model=completion.model,
        position=turn.user_message.position + 1,
        created_at=now,
        response=ResponsePublic(**response),
    )
    return ChatTurnPublic(
        conversation=turn.conversation, user_message=turn.user_message, assistant_message=answer
    )
