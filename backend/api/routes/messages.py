"""A conversation's messages: read, ask (JSON or streamed), regenerate, clear."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from backend.api.answers import answer_as_event_stream, answer_as_json, wants_event_stream
from backend.api.deps import CurrentOwner
from backend.core.db import run_in_session
from backend.schemas import (
    ChatTurnPublic,
    MessageCreate,
    MessageOut,
    MessagesPublic,
    RegenerateRequest,
)
from backend.services import chat
from backend.services.chat import ChatTurn

router = APIRouter(prefix="/conversations/{uuid}", tags=["messages"])

ANSWER_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": "With `Accept: text/event-stream`: events start, delta*, then done or error",
        "content": {"text/event-stream": {}},
    },
    502: {"description": "The model provider failed; the question is stored, no answer is"},
    504: {"description": "The model provider timed out; the question is stored, no answer is"},
}


async def _answer(request: Request, turn: ChatTurn) -> ChatTurnPublic | StreamingResponse:
    if wants_event_stream(request):
        return answer_as_event_stream(turn)
    return await answer_as_json(turn)


@router.get("/messages", response_model=MessagesPublic)
async def list_messages(
    owner: CurrentOwner,
    uuid: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> MessagesPublic:
    return await run_in_session(
        chat.list_messages, owner=owner, conversation_uuid=uuid, limit=limit, offset=offset
    )


@router.post(
    "/messages", status_code=201, response_model=ChatTurnPublic, responses=ANSWER_RESPONSES
)
async def send_message(
    request: Request, owner: CurrentOwner, uuid: str, message_in: MessageCreate
) -> ChatTurnPublic | StreamingResponse:
    """Ask a question. The answer comes as JSON, or streamed as server-sent events."""
    turn = await run_in_session(
        chat.start_turn,
        owner=owner,
        conversation_uuid=uuid,
        content=message_in.content,
        model=message_in.model,
    )
    return await _answer(request, turn)


@router.post(
    "/regenerate", status_code=201, response_model=ChatTurnPublic, responses=ANSWER_RESPONSES
)
async def regenerate(
    request: Request, owner: CurrentOwner, uuid: str, body: RegenerateRequest | None = None
) -> ChatTurnPublic | StreamingResponse:
    """Answer the last question again, replacing the last answer once the new one is complete."""
    turn = await run_in_session(
        chat.start_regeneration,
        owner=owner,
        conversation_uuid=uuid,
        model=body.model if body else None,
    )
    return await _answer(request, turn)


@router.delete("/messages", response_model=MessageOut)
async def clear_messages(owner: CurrentOwner, uuid: str) -> MessageOut:
    await run_in_session(chat.clear_history, owner=owner, conversation_uuid=uuid)
    return MessageOut(message="History cleared")
