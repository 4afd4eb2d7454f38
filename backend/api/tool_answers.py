"""Answers in conversations with tools: the model may call a built-in tool before answering.

Each round streams the model's reply with the tools offered. A tool call is logged (and run at
once, or left pending when the conversation asks for approval); its result goes back to the
model, which then answers. No database session is open while the model is awaited: each
step (log the call, store the answer) is its own short transaction.

SSE events, in order: `start`, then per tool call `tool_call` (pending) or `tool_result`
(executed), `delta`*, and finally `done` (a ToolTurnPublic) or `error`.
"""

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse

from backend.api.answers import answer_as_event_stream, answer_as_json, wants_event_stream
from backend.core.db import run_quick_in_session
from backend.llm.client import Completion, LLMError
from backend.llm.tool_calls import ToolCall, complete_with_tools, stream_with_tools
from backend.schemas import ChatTurnPublic, ToolExecutionPublic, ToolTurnPublic
from backend.services import chat, external_tools, tools
from backend.services.chat import ChatTurn
from backend.services.turns import PreparedTurn

logger = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 3


def _with_usage(completion: Completion, calls: list[ToolCall]) -> Completion:
    """The answer's usage plus the tokens spent proposing tool calls on the way."""
    prompt = (completion.tokens_prompt or 0) + sum(c.tokens_prompt for c in calls)
    answer = (completion.tokens_completion or 0) + sum(c.tokens_completion for c in calls)
    if not calls:
        return completion
    return replace(
        completion, tokens_prompt=prompt, tokens_completion=answer, tokens_total=prompt + answer
    )


async def _reply(
    *, turn: ChatTurn, messages: list, offered: list | None, streamed: bool
) -> AsyncIterator[str | Completion | ToolCall]:
    """Text deltas when streamed, then the round's Completion or ToolCall."""
    ask = {"provider": turn.provider, "model": turn.model, "messages": messages, "tools": offered}
    if not streamed:  # one JSON reply: far cheaper than parsing a chunk per token
        yield await complete_with_tools(**ask)
        return
    async for item in stream_with_tools(**ask):
        yield item


async def _rounds(
    *, turn: ChatTurn, user_id: int, approval: bool, extra: list[dict[str, Any]], streamed: bool
) -> AsyncIterator[tuple[str, Any]]:
    """("delta", text), ("tool_call" | "tool_result", execution), then ("done", turn result)."""
    messages, calls = [*turn.prompt, *extra], []
    username = await external_tools.username_of(user_id)
    for round_number in range(MAX_TOOL_ROUNDS + 1):
        offered = tools.openai_tools(username=username) if round_number < MAX_TOOL_ROUNDS else None
        result: Completion | ToolCall | None = None
        async for item in _reply(turn=turn, messages=messages, offered=offered, streamed=streamed):
            if isinstance(item, str):
                yield "delta", item
            else:
                result = item
        if isinstance(result, Completion):
            completion = _with_usage(result, calls)
            done = await run_quick_in_session(chat.finish_turn, turn=turn, completion=completion)
            yield "done", done
            return
        assert isinstance(result, ToolCall)
        calls.append(result)
        execution = await external_tools.propose(
            turn=turn, user_id=user_id, call=result, approval=approval
        )
        if execution.status == "pending":
            yield "tool_call", execution
            return
        yield "tool_result", execution
        messages += tools.call_messages(
            call_id=result.id,
            name=result.name,
            arguments=result.arguments,
            result=execution.result or "",
        )


def _tool_turn(turn: ChatTurn, done: ChatTurnPublic | None, executions: list) -> ToolTurnPublic:
    if done is not None:  # the parts as they are (dumping and re-validating them cost more)
        return ToolTurnPublic(
            conversation=done.conversation,
            user_message=done.user_message,
            assistant_message=done.assistant_message,
            tool_executions=executions,
        )
    return ToolTurnPublic(
        conversation=turn.conversation,
        user_message=turn.user_message,
        assistant_message=None,
        tool_executions=executions,
        pending=True,
    )


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


async def _events(
    turn: ChatTurn, *, user_id: int, approval: bool, extra: list, first: list[ToolExecutionPublic]
) -> AsyncIterator[str]:
    user_message = turn.user_message.model_dump(mode="json")
    yield _event(
        "start",
        {
            "conversation_uuid": turn.conversation.uuid,
            "user_message": user_message,
            "model": turn.model,
        },
    )
    executions, done = list(first), None
    for execution in first:
        yield _event("tool_result", {"execution": execution.model_dump(mode="json")})
    try:
        rounds = _rounds(turn=turn, user_id=user_id, approval=approval, extra=extra, streamed=True)
        async for name, data in rounds:
            if name == "delta":
                yield _event("delta", {"content": data})
            elif name == "done":
                done = data
            else:
                executions.append(data)
                yield _event(name, {"execution": data.model_dump(mode="json")})
    except LLMError as error:
        yield _event(
            "error",
            {"detail": error.detail, "status": error.status_code, "user_message": user_message},
        )
        return
    except Exception:  # the stream has started: report in-band rather than cut it
        logger.exception("tool_answer_failed", extra={"conversation_id": turn.conversation_id})
        yield _event(
            "error",
            {
                "detail": "The answer could not be saved",
                "status": 500,
                "user_message": user_message,
            },
        )
        return
    yield _event("done", _tool_turn(turn, done, executions).model_dump(mode="json"))


async def _as_json(
    turn: ChatTurn, *, user_id: int, approval: bool, extra: list, first: list[ToolExecutionPublic]
) -> ToolTurnPublic:
    executions, done = list(first), None
    try:
        rounds = _rounds(turn=turn, user_id=user_id, approval=approval, extra=extra, streamed=False)
        async for name, data in rounds:
            if name == "done":
                done = data
            elif name != "delta":
                executions.append(data)
    except LLMError as error:
        raise HTTPException(error.status_code, error.detail) from error
    return _tool_turn(turn, done, executions)


async def answer(request: Request, prepared: PreparedTurn) -> Any:
    """Answer a prepared turn: with tools when the conversation has them, else as before."""
    turn = prepared.turn
    if not prepared.tools_enabled or prepared.user_id is None:
        if wants_event_stream(request):
            return answer_as_event_stream(turn)
        return await answer_as_json(turn)
    options = {
        "user_id": prepared.user_id,
        "approval": prepared.tool_approval,
        "extra": [],
        "first": [],
    }
    if wants_event_stream(request):
        return _stream_response(_events(turn, **options))
    return await _as_json(turn, **options)


async def continue_after_decision(
    request: Request, decision: tools.Decision, *, user_id: int
) -> Any:
    """After a call was approved or rejected: the model answers with the call's outcome."""
    approval = decision.turn.conversation.tool_approval
    options = {"user_id": user_id, "approval": approval, "extra": decision.call_messages}
    options["first"] = [decision.execution]
    if wants_event_stream(request):
        return _stream_response(_events(decision.turn, **options))
    return await _as_json(decision.turn, **options)


def _stream_response(events: AsyncIterator[str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)
