"""The one answer pipeline: a prepared turn in, typed events out, the answer stored.

Every answer goes through `answer()`: a plain chat is the same pipeline with no tools
offered. Each round asks the model (streamed, or in one piece for JSON callers); a tool call
is logged (and run at once, or left pending when the conversation asks for approval) and its
result goes back to the model, which then answers. No database session is open while the
model is awaited: each step (log the call, store the answer) is its own short transaction.

Stopping (the `stop` event set) ends the model's stream at once and stores what was written
so far as the answer, with finish reason "stopped". Provider failures are logged here, on
every path, with the model, the provider's host and the error's class — never the key or
the prompt.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from backend.core.db import run_quick_in_session
from backend.llm.client import Completion, LLMError
from backend.llm.tool_calls import ToolCall, complete_with_tools, stream_with_tools
from backend.schemas import ChatTurnPublic, ToolExecutionPublic, ToolTurnPublic
from backend.services import chat, external_tools, tools
from backend.services.chat import ChatTurn

logger = logging.getLogger(__name__)

# Keeps a finished answer: stores it (the default, `chat.finish_turn`), or, for a temporary
# chat, only counts its usage. Returns the turn as the caller reports it.
Keeper = Callable[[ChatTurn, Completion], Awaitable[ChatTurnPublic]]

MAX_TOOL_ROUNDS = 3
STOPPED = "stopped"


@dataclass(frozen=True)
class AnswerOptions:
    """How to answer a turn."""

    # Tools offered to the model (OpenAI function definitions); None: a plain answer.
    tools: list[dict[str, Any]] | None = None
    # Who proposed calls are logged for, and whether each waits for their approval.
    user_id: int | None = None
    approval: bool = False
    # Messages after the turn's prompt (a decided tool call and its outcome).
    extra: tuple[dict[str, Any], ...] = ()
    # Executions already decided before this answer (reported first).
    first: tuple[ToolExecutionPublic, ...] = ()
    # Stream the model's reply (deltas) or ask for it in one piece (cheaper, for JSON).
    streamed: bool = True
    # How the finished answer is kept; None: stored in its conversation.
    keep: Keeper | None = None


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class ToolEvent:
    name: Literal["tool_call", "tool_result"]
    execution: ToolExecutionPublic


@dataclass(frozen=True)
class Finished:
    """The turn as stored: an answer (complete or stopped), or a call waiting for approval."""

    result: ToolTurnPublic


@dataclass(frozen=True)
class Failed:
    detail: str
    status: int


Event = Delta | ToolEvent | Finished | Failed


def provider_host(turn: ChatTurn) -> str | None:
    try:
        return urlsplit(turn.provider.base_url or "https://api.openai.com").hostname
    except ValueError:  # a stored URL that does not parse (the error says so to the user)
        return None


def log_provider_failure(turn: ChatTurn, error: LLMError) -> None:
    """One warning per failed answer: what failed and where, never the key or the prompt."""
    cause = error.__cause__
    fields = {k: v for k, v in error.log_fields().items() if v is not None}
    error_class = fields.get("cause") or (type(cause).__name__ if cause else type(error).__name__)
    logger.warning(
        "llm_failed",
        extra={
            "model": turn.model,
            "provider_host": provider_host(turn),
            **fields,
            "cause": error_class,
            "error_class": error_class,
            "conversation_id": turn.conversation_id,
        },
    )


def _with_usage(completion: Completion, calls: list[ToolCall]) -> Completion:
    """The answer's usage plus the tokens spent proposing tool calls on the way."""
    if not calls:
        return completion
    prompt = (completion.tokens_prompt or 0) + sum(c.tokens_prompt for c in calls)
    answer = (completion.tokens_completion or 0) + sum(c.tokens_completion for c in calls)
    return replace(
        completion, tokens_prompt=prompt, tokens_completion=answer, tokens_total=prompt + answer
    )


async def _until_stopped(items: AsyncIterator[Any], stop: asyncio.Event) -> AsyncIterator[Any]:
    """The items, until `stop` is set (without waiting for the provider's next chunk)."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            following: asyncio.Future[Any] = asyncio.ensure_future(anext(items))
            await asyncio.wait({following, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                break
            try:
                yield following.result()
            except StopAsyncIteration:
                return
    finally:
        stopping.cancel()
        aclose: Callable[[], Awaitable[None]] | None = getattr(items, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except (RuntimeError, LLMError):  # closing a generator that is mid-await
                pass


@dataclass
class _Round:
    """One model reply: its text so far and how it ended."""

    text: list[str] = field(default_factory=list)
    result: Completion | ToolCall | None = None


async def _reply(
    *,
    turn: ChatTurn,
    messages: list,
    offered: list | None,
    options: AnswerOptions,
    stop: asyncio.Event,
    into: _Round,
) -> AsyncIterator[str]:
    ask: dict[str, Any] = {
        "provider": turn.provider,
        "model": turn.model,
        "messages": messages,
        "tools": offered,
    }
    if not options.streamed:  # one JSON reply: far cheaper than parsing a chunk per token
        into.result = await complete_with_tools(**ask)
        return
    async for item in _until_stopped(stream_with_tools(**ask), stop):
        if isinstance(item, str):
            into.text.append(item)
            yield item
        else:
            into.result = item


def _stopped_completion(*, turn: ChatTurn, text: str, started: float) -> Completion:
    return Completion(
        content=text,
        model=turn.model,
        tokens_prompt=None,
        tokens_completion=None,
        tokens_total=None,
        finish_reason=STOPPED,
        completion_time_ms=round((time.perf_counter() - started) * 1000),
    )


def _tool_turn(
    turn: ChatTurn, done: ChatTurnPublic | None, executions: list[ToolExecutionPublic]
) -> ToolTurnPublic:
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


async def _store(turn: ChatTurn, completion: Completion) -> ChatTurnPublic:
    return await run_quick_in_session(chat.finish_turn, turn=turn, completion=completion)


def _keeper(options: AnswerOptions) -> Keeper:
    return options.keep or _store


async def _rounds(
    *, turn: ChatTurn, options: AnswerOptions, stop: asyncio.Event, executions: list
) -> AsyncIterator[Event]:
    messages, started = [*turn.prompt, *options.extra], time.perf_counter()
    calls: list[ToolCall] = []
    for round_number in range(MAX_TOOL_ROUNDS + 1):
        offered = options.tools if round_number < MAX_TOOL_ROUNDS else None
        reply = _Round()
        async for text in _reply(
            turn=turn, messages=messages, offered=offered, options=options, stop=stop, into=reply
        ):
            yield Delta(text)
        if reply.result is None:  # stopped: what was written is the answer
            stopped = _stopped_completion(turn=turn, text="".join(reply.text), started=started)
            yield Finished(_tool_turn(turn, await _keeper(options)(turn, stopped), executions))
            return
        if isinstance(reply.result, Completion):
            done = await _keeper(options)(turn, _with_usage(reply.result, calls))
            yield Finished(_tool_turn(turn, done, executions))
            return
        call = reply.result
        calls.append(call)
        assert options.user_id is not None  # tools are offered only with a user
        # MCP calls that may run do so outside any transaction (external_tools).
        execution = await external_tools.propose(
            turn=turn, user_id=options.user_id, call=call, approval=options.approval
        )
        executions.append(execution)
        if execution.status == "pending":
            yield ToolEvent("tool_call", execution)
            yield Finished(_tool_turn(turn, None, executions))
            return
        yield ToolEvent("tool_result", execution)
        messages += tools.call_messages(
            call_id=call.id, name=call.name, arguments=call.arguments, result=execution.result or ""
        )


async def answer(
    turn: ChatTurn, options: AnswerOptions, *, stop: asyncio.Event | None = None
) -> AsyncIterator[Event]:
    """Events of one answer: Delta* and ToolEvent*, then Finished or Failed (always one)."""
    executions = list(options.first)
    for execution in options.first:
        yield ToolEvent("tool_result", execution)
    try:
        async for event in _rounds(
            turn=turn, options=options, stop=stop or asyncio.Event(), executions=executions
        ):
            yield event
    except LLMError as error:
        log_provider_failure(turn, error)
        yield Failed(error.detail, error.status_code)
    except Exception:  # reported in-band: the caller's stream has started
        logger.exception("answer_failed", extra={"conversation_id": turn.conversation_id})
        yield Failed("The answer could not be saved", 500)


async def answer_at_once(turn: ChatTurn, options: AnswerOptions) -> Finished | Failed:
    """The last event of `answer()`: for callers that want no deltas."""
    last: Event | None = None
    async for event in answer(turn, replace(options, streamed=False)):
        last = event
    assert isinstance(last, Finished | Failed)
    return last
