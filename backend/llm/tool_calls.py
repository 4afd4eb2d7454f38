"""Chat completions with tools offered (OpenAI function calling), streamed or in one piece.

Like `client.stream` and `client.complete`, but the reply may be a tool call instead of an
answer: a `Completion` or a `ToolCall` (after text deltas when streamed). Only the first
proposed call is kept (a turn runs one call at a time, which is what the approval workflow
needs).
"""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from backend.llm.client import (
    CHAT_COMPLETIONS,
    Completion,
    LLMError,
    Messages,
    Provider,
    client_for,
    completion_from,
    describe_upstream_error,
    request_completion,
)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    tokens_prompt: int = 0
    tokens_completion: int = 0


@dataclass
class _Reply:
    parts: list[str] = field(default_factory=list)
    call: dict[str, str] = field(default_factory=dict)
    usage: Any = None
    finish: str | None = None
    model: str = ""


def _absorb(reply: _Reply, chunk: ChatCompletionChunk) -> str | None:
    """Fold one chunk into the reply; the text delta it carried, if any."""
    reply.model, reply.usage = chunk.model or reply.model, chunk.usage or reply.usage
    text = None
    for choice in chunk.choices:
        reply.finish = choice.finish_reason or reply.finish
        for call in (choice.delta.tool_calls or []) if choice.delta else []:
            if call.index == 0:
                reply.call["id"] = call.id or reply.call.get("id", "")
                if call.function:
                    reply.call["name"] = reply.call.get("name", "") + (call.function.name or "")
                    reply.call["arguments"] = reply.call.get("arguments", "") + (
                        call.function.arguments or ""
                    )
        if choice.delta and choice.delta.content:
            reply.parts.append(choice.delta.content)
            text = (text or "") + choice.delta.content
    return text


async def _open(provider: Provider, body: dict[str, Any]) -> AsyncStream[ChatCompletionChunk]:
    return await client_for(provider).post(
        CHAT_COMPLETIONS,
        cast_to=ChatCompletion,
        body=body,
        stream=True,
        stream_cls=AsyncStream[ChatCompletionChunk],
    )


def _result(reply: _Reply, started: float) -> Completion | ToolCall:
    usage = reply.usage
    if reply.call.get("name"):
        return ToolCall(
            id=reply.call.get("id") or "call_0",
            name=reply.call["name"],
            arguments=reply.call.get("arguments") or "{}",
            tokens_prompt=usage.prompt_tokens if usage else 0,
            tokens_completion=usage.completion_tokens if usage else 0,
        )
    return Completion(
        content="".join(reply.parts),
        model=reply.model,
        tokens_prompt=usage.prompt_tokens if usage else None,
        tokens_completion=usage.completion_tokens if usage else None,
        tokens_total=usage.total_tokens if usage else None,
        finish_reason=reply.finish,
        completion_time_ms=round((time.perf_counter() - started) * 1000),
    )


async def stream_with_tools(
    *, provider: Provider, model: str, messages: Messages, tools: list[dict[str, Any]] | None
) -> AsyncIterator[str | Completion | ToolCall]:
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
    body["stream_options"] = {"include_usage": True}
    if tools:
        body["tools"] = tools
    started, reply = time.perf_counter(), _Reply(model=model)
    try:
        async for chunk in await _open(provider, body):
            if (text := _absorb(reply, chunk)) is not None:
                yield text
    except (openai.OpenAIError, httpx2.HTTPError) as error:
        if reply.parts:
            broke = "The model provider's stream broke off before the answer was complete."
            raise LLMError(broke) from error
        raise describe_upstream_error(error) from error
    if reply.finish is None:
        raise LLMError("The model provider's stream ended before the answer was complete.")
    yield _result(reply, started)


async def complete_with_tools(
    *, provider: Provider, model: str, messages: Messages, tools: list[dict[str, Any]] | None
) -> Completion | ToolCall:
    """The reply in one piece: for JSON answers, where nobody watches deltas arrive."""
    body: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        body["tools"] = tools
    started = time.perf_counter()
    reply = await request_completion(provider=provider, body=body)
    message = reply.choices[0].message if reply.choices else None
    call = message.tool_calls[0] if message and message.tool_calls else None
    if call is None:
        return completion_from(reply, model=model, started=started)
    function = getattr(call, "function", None)
    if function is None:  # a custom (non-function) tool call: none of ours are
        raise LLMError("The model asked for a tool this service does not offer.")
    usage = reply.usage
    return ToolCall(
        id=call.id or "call_0",
        name=function.name,
        arguments=function.arguments or "{}",
        tokens_prompt=usage.prompt_tokens if usage else 0,
        tokens_completion=usage.completion_tokens if usage else 0,
    )
