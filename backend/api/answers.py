"""Answers over HTTP: one JSON body, or server-sent events that any follower can resume.

The answer itself runs on the server (`services.generations`): a request that asks only
starts it and follows it; leaving does not stop it. SSE events, in order: `start`, then per
tool call `tool_call` (pending) or `tool_result` (executed), `delta`* (each with an `id`:
the characters of the answer sent so far, for `Last-Event-ID`), and finally `done` (a
ToolTurnPublic; a stopped answer has finish reason "stopped") or `error`.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse

from backend.schemas import ToolTurnPublic
from backend.services import answering, generations, tools
from backend.services.answering import AnswerOptions, Delta, Failed, Finished
from backend.services.chat import ChatTurn
from backend.services.generations import Generation, Item, Shared
from backend.services.turns import PreparedTurn

EVENT_STREAM = "text/event-stream"
# Every event name an answer stream can carry, documented in the OpenAPI document as the
# `x-events` of each text/event-stream response (the web client follows that list).
EVENTS = ("start", "delta", "tool_call", "tool_result", "done", "error")
EVENT_STREAM_CONTENT = {EVENT_STREAM: {"x-events": list(EVENTS)}}
# no-cache and no proxy buffering, or deltas arrive all at once.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def wants_event_stream(request: Request) -> bool:
    return EVENT_STREAM in request.headers.get("accept", "")


def _event(name: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


async def _sse(items: AsyncIterator[Item]) -> AsyncIterator[str]:
    async for name, data, event_id in items:
        yield _event(name, data, event_id)


def event_stream(found: Generation | Shared, *, after: int = 0) -> StreamingResponse:
    events = _sse(generations.follow(found, after=after))
    return StreamingResponse(events, media_type=EVENT_STREAM, headers=STREAM_HEADERS)


def options_for(prepared: PreparedTurn) -> AnswerOptions:
    """No tools offered unless the conversation has them (and a user to log calls for)."""
    if not prepared.tools_enabled or prepared.user_id is None:
        return AnswerOptions()
    return AnswerOptions(
        tools=tools.openai_tools(username=prepared.username),
        user_id=prepared.user_id,
        approval=prepared.tool_approval,
    )


async def _respond(
    request: Request, turn: ChatTurn, options: AnswerOptions
) -> ToolTurnPublic | StreamingResponse:
    streamed = wants_event_stream(request)
    generation = await generations.start(turn, replace(options, streamed=streamed))
    if streamed:
        return event_stream(generation)
    outcome = await generations.wait(generation)
    if isinstance(outcome, Failed):
        raise HTTPException(outcome.status, outcome.detail)
    return outcome.result


async def answer(request: Request, prepared: PreparedTurn) -> ToolTurnPublic | StreamingResponse:
    """Answer a prepared turn: with tools when the conversation has them."""
    return await _respond(request, prepared.turn, options_for(prepared))


async def continue_after_decision(
    request: Request, decision: tools.Decision, *, user_id: int, username: str | None = None
) -> ToolTurnPublic | StreamingResponse:
    """After a call was approved or rejected: the model answers with the call's outcome."""
    options = AnswerOptions(
        tools=tools.openai_tools(username=username),
        user_id=user_id,
        approval=decision.turn.conversation.tool_approval,
        extra=tuple(decision.call_messages),
        first=(decision.execution,),
    )
    return await _respond(request, decision.turn, options)


async def _unstored_events(turn: ChatTurn, options: AnswerOptions) -> AsyncIterator[Item]:
    """The pipeline's events as SSE items, for an answer nobody else follows (temporary)."""
    question = turn.user_message.model_dump(mode="json")
    start = {"conversation_uuid": turn.conversation.uuid, "user_message": question}
    yield "start", {**start, "model": turn.model, "title": turn.conversation.title}, None
    written = 0
    async for event in answering.answer(turn, options):
        if isinstance(event, Delta):
            written += len(event.text)
            yield "delta", {"content": event.text}, written
        elif isinstance(event, Finished):
            yield "done", event.result.model_dump(mode="json"), None
        elif isinstance(event, Failed):
            failure = {"detail": event.detail, "status": event.status, "user_message": question}
            yield "error", failure, None


async def answer_unstored(
    request: Request, turn: ChatTurn, options: AnswerOptions
) -> ToolTurnPublic | StreamingResponse:
    """Answer in this request only: leaving ends it (nothing of it is kept to go on with)."""
    if wants_event_stream(request):
        events = _sse(_unstored_events(turn, options))
        return StreamingResponse(events, media_type=EVENT_STREAM, headers=STREAM_HEADERS)
    outcome = await answering.answer_at_once(turn, options)
    if isinstance(outcome, Failed):
        raise HTTPException(outcome.status, outcome.detail)
    return outcome.result
