"""Chat completions with tools offered (OpenAI function calling), streamed or in one piece.

Like `client.stream` and `client.complete`, but the reply may be a tool call instead of an
answer: a `Completion` or a `ToolCall` (after text deltas when streamed). Only the first
proposed call is kept (a turn runs one call at a time, which is what the approval workflow
needs).
"""

import time
from collections.abc import AsyncIterator
from typing import Any

from backend.llm.client import (
    Completion,
    LLMError,
    Messages,
    Provider,
    ToolCall,
    completion_from,
    request_completion,
    stream_reply,
)

__all__ = ["ToolCall", "complete_with_tools", "stream_with_tools"]


async def stream_with_tools(
    *, provider: Provider, model: str, messages: Messages, tools: list[dict[str, Any]] | None
) -> AsyncIterator[str | Completion | ToolCall]:
    body: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        body["tools"] = tools
    async for item in stream_reply(provider=provider, body=body):
        yield item


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
