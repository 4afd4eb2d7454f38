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
    attributed,
    request_completion,
    stream_reply,
    whole_reply,
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
    data = await request_completion(provider=provider, body=body)
    try:
        return whole_reply(data, model=model).result(started)
    except LLMError as error:
        raise attributed(error, provider=provider, model=model)  # noqa: B904 (same error)
