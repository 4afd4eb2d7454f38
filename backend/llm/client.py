"""Chat completions through the official `openai` SDK, for real providers and the mock alike."""

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI, AsyncStream
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from backend.core.config import settings
from backend.llm.mock import mock_openai_app
from backend.llm.transport import StreamingASGITransport

logger = logging.getLogger(__name__)

# The mock is reached through an in-process ASGI transport: the same SDK code path as a real
# provider, without a socket back into our own server (which could not work under TestClient,
# would depend on knowing our port, and would cost a second HTTP round trip per message).
MOCK_BASE_URL = "http://mock-openai.internal/v1"

Messages = list[dict[str, Any]]

# Requests go through the SDK's generic `post` rather than `chat.completions.create`: same
# auth, retries, timeouts, error classes and SSE decoding, but without `create`'s
# re-validation of every history message against the SDK's TypedDicts, which costs ~4x more
# CPU than the rest of the call (measured in docs/BACKEND.md). Our bodies are plain JSON we
# built ourselves, and the replies are still parsed into the SDK's typed models.
CHAT_COMPLETIONS = "/chat/completions"


@dataclass(frozen=True)
class Provider:
    """Where to send a request: resolved per user before any await, then immutable."""

    api_key: str
    base_url: str | None
    is_mock: bool = False


@dataclass(frozen=True)
class Completion:
    content: str
    model: str
    tokens_prompt: int | None
    tokens_completion: int | None
    tokens_total: int | None
    finish_reason: str | None
    completion_time_ms: int


class LLMError(Exception):
    """An upstream failure, already phrased for the user."""

    def __init__(self, detail: str, *, status_code: int = 502) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code


def server_provider() -> Provider:
    if settings.use_mock_llm:
        return Provider(api_key="mock", base_url=MOCK_BASE_URL, is_mock=True)
    return Provider(api_key=settings.OPENAI_API_KEY or "", base_url=settings.OPENAI_BASE_URL)


# One SDK client per provider and event loop: building clients is costly, and an HTTP
# connection pool must not be shared between event loops.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Provider, AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def client_for(provider: Provider) -> AsyncOpenAI:
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    if provider not in per_loop:
        transport = StreamingASGITransport(mock_openai_app) if provider.is_mock else None
        per_loop[provider] = AsyncOpenAI(
            api_key=provider.api_key,
            base_url=provider.base_url,
            timeout=httpx2.Timeout(settings.LLM_TIMEOUT_SECONDS, connect=10.0),
            max_retries=settings.LLM_MAX_RETRIES,
            http_client=httpx2.AsyncClient(transport=transport) if transport else None,
        )
    return per_loop[provider]


def describe_upstream_error(error: Exception) -> LLMError:
    """Turn SDK exceptions into messages a user can act on, without leaking secrets."""
    if isinstance(error, openai.APITimeoutError):
        seconds = settings.LLM_TIMEOUT_SECONDS
        return LLMError(f"The model provider did not answer within {seconds:g} s.", status_code=504)
    if isinstance(error, openai.AuthenticationError):
        return LLMError("The model provider rejected the API key (401). Check it in Settings.")
    if isinstance(error, openai.RateLimitError):
        return LLMError("The model provider is rate limiting requests (429). Try again shortly.")
    if isinstance(error, openai.APIStatusError):
        return LLMError(f"The model provider answered with an error ({error.status_code}).")
    if isinstance(error, openai.APIConnectionError):
        return LLMError("The model provider could not be reached or the connection broke.")
    return LLMError("The model provider's answer could not be read.")


def _completion(
    *, content: str, model: str, usage: CompletionUsage | None, finish: str | None, started: float
) -> Completion:
    return Completion(
        content=content,
        model=model,
        tokens_prompt=usage.prompt_tokens if usage else None,
        tokens_completion=usage.completion_tokens if usage else None,
        tokens_total=usage.total_tokens if usage else None,
        finish_reason=finish,
        completion_time_ms=round((time.perf_counter() - started) * 1000),
    )


async def request_completion(*, provider: Provider, body: dict[str, Any]) -> ChatCompletion:
    """One non-streamed chat completion, with upstream failures phrased for the user."""
    try:
        return await client_for(provider).post(CHAT_COMPLETIONS, cast_to=ChatCompletion, body=body)
    except (openai.OpenAIError, httpx2.HTTPError) as error:
        raise describe_upstream_error(error) from error


def completion_from(reply: ChatCompletion, *, model: str, started: float) -> Completion:
    if not reply.choices or reply.choices[0].message.content is None:
        raise LLMError("The model provider returned an empty answer.")
    choice = reply.choices[0]
    return _completion(
        content=choice.message.content or "",
        model=reply.model or model,
        usage=reply.usage,
        finish=choice.finish_reason,
        started=started,
    )


async def complete(*, provider: Provider, model: str, messages: Messages) -> Completion:
    """One answer in one piece."""
    started = time.perf_counter()
    reply = await request_completion(provider=provider, body={"model": model, "messages": messages})
    return completion_from(reply, model=model, started=started)


async def _open_stream(
    provider: Provider, model: str, messages: Messages
) -> AsyncStream[ChatCompletionChunk]:
    body = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return await client_for(provider).post(
        CHAT_COMPLETIONS,
        cast_to=ChatCompletion,
        body=body,
        stream=True,
        stream_cls=AsyncStream[ChatCompletionChunk],
    )


async def stream(
    *, provider: Provider, model: str, messages: Messages
) -> AsyncIterator[str | Completion]:
    """Yield text deltas as they arrive, then one Completion with the totals.

    A stream that ends without a finish reason was cut off: that raises LLMError, so a
    partial answer is never mistaken for a complete one.
    """
    started, parts, usage, finish, used_model = time.perf_counter(), [], None, None, model
    try:
        async for chunk in await _open_stream(provider, model, messages):
            used_model, usage = chunk.model or used_model, chunk.usage or usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                if choice.delta and choice.delta.content:
                    parts.append(choice.delta.content)
                    yield choice.delta.content
    except (openai.OpenAIError, httpx2.HTTPError) as error:
        if parts:
            broke = "The model provider's stream broke off before the answer was complete."
            raise LLMError(broke) from error
        raise describe_upstream_error(error) from error
    if finish is None:
        raise LLMError("The model provider's stream ended before the answer was complete.")
    yield _completion(
        content="".join(parts), model=used_model, usage=usage, finish=finish, started=started
    )
