"""A conversation's messages: read the branch shown, ask (JSON or streamed), edit, regenerate,
switch versions, clear."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import StreamingResponse

from backend.api.answers import EVENT_STREAM_CONTENT, answer, event_stream
from backend.api.deps import CurrentOwner
from backend.api.params import Offset
from backend.core.db import run_in_session, run_quick_in_session
from backend.schemas import (
    ChatTurnPublic,
    ConversationPublic,
    MessageCreate,
    MessageOut,
    MessagesPublic,
    RegenerateRequest,
    ShowMessage,
    ToolTurnPublic,
)
from backend.services import chat, generations, turns
from backend.services.errors import NotFound

router = APIRouter(prefix="/conversations/{uuid}", tags=["messages"])

ANSWER_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": "With `Accept: text/event-stream`: events start, delta*, then done or error",
        "content": EVENT_STREAM_CONTENT,
    },
    502: {"description": "The model provider failed; the question is stored, no answer is"},
    504: {"description": "The model provider timed out; the question is stored, no answer is"},
    409: {"description": "An answer is still being written in this conversation"},
    429: {"description": "A daily token budget or message rate is reached (Retry-After header)"},
}
NOTHING_RUNNING = "No answer is being written in this conversation"


@router.get("/messages", response_model=MessagesPublic)
async def list_messages(
    owner: CurrentOwner,
    uuid: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> MessagesPublic:
    return await run_quick_in_session(
        chat.list_messages, owner=owner, conversation_uuid=uuid, limit=limit, offset=offset
    )


@router.post(
    "/messages", status_code=201, response_model=ToolTurnPublic, responses=ANSWER_RESPONSES
)
async def send_message(
    request: Request, owner: CurrentOwner, uuid: str, message_in: MessageCreate
) -> ChatTurnPublic | ToolTurnPublic | StreamingResponse:
    """Ask a question. The answer comes as JSON, or streamed as server-sent events.

    The question follows the message shown last (or `parent_uuid`); with `edit_of` it is a
    new version of that question, a branch of its own. In a conversation with tools the
    model may call one first (see the tool-call events).
    """
    prepared = await run_quick_in_session(
        turns.start_turn,
        owner=owner,
        conversation_uuid=uuid,
        content=message_in.content,
        model=message_in.model,
        parent_uuid=message_in.parent_uuid,
        edit_of=message_in.edit_of,
    )
    return await answer(request, prepared)


@router.post(
    "/regenerate", status_code=201, response_model=ToolTurnPublic, responses=ANSWER_RESPONSES
)
async def regenerate(
    request: Request, owner: CurrentOwner, uuid: str, body: RegenerateRequest | None = None
) -> ChatTurnPublic | ToolTurnPublic | StreamingResponse:
    """Write a new version of an answer (any answer: `message_uuid`; by default the one shown
    last). Earlier versions are kept; the conversation shows the new one once complete."""
    prepared = await run_in_session(
        turns.start_regeneration,
        owner=owner,
        conversation_uuid=uuid,
        model=body.model if body else None,
        replaces=body.message_uuid if body else None,
    )
    return await answer(request, prepared)


@router.put(
    "/current",
    response_model=ConversationPublic,
    responses={404: {"description": "No such message in this conversation"}},
)
async def show_branch(owner: CurrentOwner, uuid: str, body: ShowMessage) -> ConversationPublic:
    """Show the branch through a message (a version arrow): it ends at the newest message
    below it, and the conversation remembers it (`current_message_uuid`)."""
    return await run_quick_in_session(
        chat.show_message, owner=owner, conversation_uuid=uuid, message_uuid=body.message_uuid
    )


@router.delete("/messages", response_model=MessageOut)
async def clear_messages(owner: CurrentOwner, uuid: str) -> MessageOut:
    await run_in_session(chat.clear_history, owner=owner, conversation_uuid=uuid)
    return MessageOut(message="History cleared")


@router.get(
    "/answer",
    responses={
        200: {
            "description": "Events as for a question, from `Last-Event-ID` characters on",
            "content": EVENT_STREAM_CONTENT,
        },
        404: {"description": NOTHING_RUNNING},
    },
)
async def follow_answer(
    owner: CurrentOwner,
    uuid: str,
    last_event_id: Annotated[int | None, Header(ge=0, le=10_000_000)] = None,
    after: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
) -> StreamingResponse:
    """Follow the answer being written (from any device): what was written, then live.

    A follower that already has part of it sends how many characters (the last delta's
    event id) as `Last-Event-ID` or `after`. A failed answer is reported as an `error`."""
    found = await generations.find(owner=owner, conversation_uuid=uuid)
    if found is None:
        raise NotFound(NOTHING_RUNNING)
    return event_stream(found, after=after if after is not None else last_event_id or 0)


@router.post(
    "/answer/stop",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MessageOut,
    responses={404: {"description": NOTHING_RUNNING}},
)
async def stop_answer(owner: CurrentOwner, uuid: str) -> MessageOut:
    """Stop the answer being written: what was written so far is stored as the answer."""
    found = await generations.find(owner=owner, conversation_uuid=uuid)
    if found is None or found.started is None:
        raise NotFound(NOTHING_RUNNING)
    await generations.stop(found)
    return MessageOut(message="Stopping")
