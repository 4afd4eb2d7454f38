"""Chat completions through the official `openai` SDK, for real providers and the mock alike."""

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI, AsyncStream

from backend.core.config import egress_policy_of, settings
from backend.core.egress import EgressPolicy, InvalidURL, check_url, guarded_client, refusal_in
from backend.llm.mock import mock_openai_app
from backend.llm.transport import StreamingASGITransport

logger = logging.getLogger(__name__)

# The mock is reached through an in-process ASGI transport: the same SDK code path as a real
# provider, without a socket back into our own server (which could not work under TestClient,
# would depend on knowing our port, and would cost a second HTTP round trip per message).
MOCK_BASE_URL = "http://mock-openai.internal/v1"
DEFAULT_BASE_URL = "https://api.openai.com/v1"  # the SDK's, when no base URL is set

Messages = list[dict[str, Any]]

# Requests go through the SDK's generic `post` rather than `chat.completions.create`: same
# auth, retries, timeouts, error classes and SSE decoding, but without `create`'s
# re-validation of every history message against the SDK's TypedDicts, which costs ~4x more
# CPU than the rest of the call (measured in docs/BACKEND.md). Our bodies are plain JSON we
# built ourselves. Whole replies are parsed into the SDK's typed models; streamed chunks are
# read as dicts (see _Reply).
CHAT_COMPLETIONS = "/chat/completions"


@dataclass(frozen=True)
class Provider:
    """Where to send a request: resolved per user before any await, then immutable.

    `guarded`: the URL was chosen by someone other than the operator, so requests go through
    the egress guard (backend/core/egress.py) and failures are told in one generic sentence.
    `paid_by_server`: the server's key (or the mock) pays, so the answer counts against the
    server's token budget; a user's own key does not.
    """

    api_key: str = field(repr=False)
    base_url: str | None
    is_mock: bool = False
    guarded: bool = False
    paid_by_server: bool = True

    @property
    def host(self) -> str:
        """The provider's host name, for logs (never the key, the path or a query)."""
        try:
            return httpx2.URL(self.base_url or DEFAULT_BASE_URL).host or "?"
        except (httpx2.InvalidURL, TypeError, ValueError):
            return "(invalid URL)"


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
    """An upstream failure, already phrased for the user, with what the server log needs.

    `model`, `provider_host` and `error_class` (the underlying exception's class) are for
    logging; `detail` is the sentence the user sees.
    """

    def __init__(
        self,
        detail: str,
        *,
        status_code: int = 502,
        model: str | None = None,
        provider_host: str | None = None,
        error_class: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code
        self.model, self.provider_host, self.error_class = model, provider_host, error_class

    def log_fields(self) -> dict[str, Any]:
        """What a log line about this failure may say: never the key or the prompt."""
        return {
            "model": self.model,
            "provider_host": self.provider_host,
            "status": self.status_code,
            "cause": self.error_class,
        }


def attributed(
    error: LLMError, *, provider: Provider, model: str | None, cause: BaseException | None = None
) -> LLMError:
    """The error with the model, the provider's host and the underlying error's class set
    (a refusal by the egress guard is named as such, not as the SDK's connection error)."""
    cause = cause or error.__cause__
    refused = refusal_in(cause)
    error.model = error.model or model
    error.provider_host = error.provider_host or provider.host
    error.error_class = error.error_class or type(refused or cause or error).__name__
    return error


def server_provider() -> Provider:
    if settings.use_mock_llm:
        return Provider(api_key="mock", base_url=MOCK_BASE_URL, is_mock=True)
    return Provider(api_key=settings.OPENAI_API_KEY or "", base_url=settings.OPENAI_BASE_URL)


# SDK clients are kept per event loop (an HTTP connection pool must not be shared between
# loops), at most PROVIDER_CLIENT_CACHE_SIZE of them, least recently used evicted. They are
# cheap because they share the loop's HTTP clients (one connection pool each for the
# server's provider, for guarded destinations and for the mock): a client of its own per
# key cost about 0.8 MiB, forever, for every distinct key a user ever typed.
@dataclass
class _LoopClients:
    sdk: "OrderedDict[Provider, AsyncOpenAI]" = field(default_factory=OrderedDict)
    http: dict[object, httpx2.AsyncClient] = field(default_factory=dict)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)


def _timeout() -> httpx2.Timeout:
    return httpx2.Timeout(settings.LLM_TIMEOUT_SECONDS, connect=10.0)


def _http_client(loop_clients: _LoopClients, provider: Provider) -> httpx2.AsyncClient:
    if provider.is_mock:
        kind: object = "mock"
    elif provider.guarded:
        kind = egress_policy_of(settings)
    else:
        kind = "server"
    if kind not in loop_clients.http:
        if kind == "mock":
            made = httpx2.AsyncClient(transport=StreamingASGITransport(mock_openai_app))
        elif kind == "server":  # the operator's own provider: the SDK's defaults
            made = openai.DefaultAsyncHttpxClient(timeout=_timeout())
        else:
            assert isinstance(kind, EgressPolicy)
            made = guarded_client(policy=kind, timeout=_timeout())
        loop_clients.http[kind] = made
    return loop_clients.http[kind]


def client_for(provider: Provider) -> AsyncOpenAI:
    loop_clients = _clients.setdefault(asyncio.get_running_loop(), _LoopClients())
    cached = loop_clients.sdk
    if provider in cached:
        cached.move_to_end(provider)
        return cached[provider]
    if provider.base_url is not None:
        check_url(provider.base_url)  # a URL stored before it was validated: InvalidURL
    try:
        client = AsyncOpenAI(
            api_key=provider.api_key,
            base_url=provider.base_url,
            timeout=_timeout(),
            max_retries=settings.LLM_MAX_RETRIES,
            http_client=_http_client(loop_clients, provider),
        )
    except (ValueError, httpx2.InvalidURL) as error:
        raise InvalidURL("The provider's URL is not valid.") from error
    cached[provider] = client
    while len(cached) > settings.PROVIDER_CLIENT_CACHE_SIZE:
        cached.popitem(last=False)  # its HTTP client is shared: nothing of its own to close
    return client


def cached_client_count() -> int:
    """How many SDK clients this event loop keeps (for tests and metrics)."""
    loop_clients = _clients.get(asyncio.get_running_loop())
    return len(loop_clients.sdk) if loop_clients else 0


# What a request to a provider can fail with (InvalidURL: a URL stored before it was checked).
UPSTREAM_ERRORS = (openai.OpenAIError, httpx2.HTTPError, InvalidURL)

GUARDED_FAILURE = (
    "Your model provider could not be used. Check its URL and key in Settings, or ask an "
    "administrator."
)


def describe_upstream_error(error: Exception, *, provider: Provider | None = None) -> LLMError:
    """Turn SDK exceptions into messages a user can act on, without leaking secrets.

    For a URL a user chose, every failure is one sentence: the status, timing or reason a
    remote address gave would make this server a port scanner for its users.
    """
    if provider is not None and provider.guarded:
        return LLMError(GUARDED_FAILURE)
    if isinstance(error, InvalidURL):
        return LLMError("The model provider's URL is not valid; an administrator must fix it.")
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


def _tokens(usage: Any, name: str) -> int | None:
    """A token count from a usage object or dict; None when missing or not a count.

    Clamped to 0..MAX_TOKENS_PER_ANSWER: a provider (a user's own, say) may report anything,
    and a negative count would lower a budget, a huge one overflow the aggregates."""
    value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return min(max(value, 0), settings.MAX_TOKENS_PER_ANSWER)


def _completion(
    *, content: str, model: str, usage: Any, finish: str | None, started: float
) -> Completion:
    return Completion(
        content=content,
        model=model,
        tokens_prompt=_tokens(usage, "prompt_tokens"),
        tokens_completion=_tokens(usage, "completion_tokens"),
        tokens_total=_tokens(usage, "total_tokens"),
        finish_reason=finish,
        completion_time_ms=round((time.perf_counter() - started) * 1000),
    )


async def request_completion(*, provider: Provider, body: dict[str, Any]) -> Any:
    """One non-streamed chat completion as the provider's JSON, failures phrased for the user.

    Read as a dict like streamed chunks (see _Reply): the SDK's typed model for a whole reply
    cost more CPU than reading the few fields we store."""
    try:
        return await client_for(provider).post(CHAT_COMPLETIONS, cast_to=object, body=body)
    except UPSTREAM_ERRORS as error:
        failure = describe_upstream_error(error, provider=provider)
        model = body.get("model")
        raise attributed(failure, provider=provider, model=model, cause=error) from error


async def complete(*, provider: Provider, model: str, messages: Messages) -> Completion:
    """One answer in one piece."""
    started = time.perf_counter()
    data = await request_completion(provider=provider, body={"model": model, "messages": messages})
    try:
        result = whole_reply(data, model=model).result(started)
        if isinstance(result, ToolCall):  # none were offered
            raise LLMError("The model asked for a tool this service does not offer.")
    except LLMError as error:
        raise attributed(error, provider=provider, model=model)  # noqa: B904 (same error)
    return result


@dataclass(frozen=True)
class ToolCall:
    """A function call the model proposed instead of answering."""

    id: str
    name: str
    arguments: str
    tokens_prompt: int = 0
    tokens_completion: int = 0


@dataclass
class _Reply:
    """A streamed reply as it accumulates."""

    model: str
    parts: list[str] = field(default_factory=list)
    call: dict[str, str] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    finish: str | None = None

    def absorb(self, chunk: dict[str, Any]) -> str | None:
        """Fold in one chunk (the provider's JSON); the text it carried, if any.

        Chunks stay plain dicts: building the SDK's typed model for every token cost more CPU
        than everything else about a streamed answer. Only the first proposed tool call is
        kept (a turn runs one call at a time, which is what the approval workflow needs).
        """
        self.model = chunk.get("model") or self.model
        self.usage = chunk.get("usage") or self.usage
        text = None
        for choice in chunk.get("choices") or ():
            self.finish = choice.get("finish_reason") or self.finish
            delta = choice.get("delta") or {}
            for call in delta.get("tool_calls") or ():
                if call.get("index", 0) == 0:
                    self.absorb_call(call)
            if content := delta.get("content"):
                self.parts.append(content)
                text = (text or "") + content
        return text

    def absorb_call(self, call: dict[str, Any]) -> None:
        function = call.get("function") or {}
        self.call["id"] = call.get("id") or self.call.get("id", "")
        self.call["name"] = self.call.get("name", "") + (function.get("name") or "")
        self.call["arguments"] = self.call.get("arguments", "") + (function.get("arguments") or "")

    def result(self, started: float) -> "Completion | ToolCall":
        if self.call.get("name"):
            return ToolCall(
                id=self.call.get("id") or "call_0",
                name=self.call["name"],
                arguments=self.call.get("arguments") or "{}",
                tokens_prompt=_tokens(self.usage, "prompt_tokens") or 0,
                tokens_completion=_tokens(self.usage, "completion_tokens") or 0,
            )
        return _completion(
            content="".join(self.parts),
            model=self.model,
            usage=self.usage,
            finish=self.finish,
            started=started,
        )


def whole_reply(data: Any, *, model: str) -> _Reply:
    """A non-streamed reply (the provider's JSON): its first choice, read like one chunk."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as error:
        raise LLMError("The model provider returned an empty answer.") from error
    reply = _Reply(model=data.get("model") or model, usage=data.get("usage"))
    reply.finish = choice.get("finish_reason")
    if calls := message.get("tool_calls"):
        if not isinstance(calls[0], dict) or not calls[0].get("function"):
            # a custom (non-function) tool call: none of ours are
            raise LLMError("The model asked for a tool this service does not offer.")
        reply.absorb_call(calls[0])
    elif isinstance(content := message.get("content"), str):
        reply.parts.append(content)
    else:
        raise LLMError("The model provider returned an empty answer.")
    return reply


async def stream_reply(
    *, provider: Provider, body: dict[str, Any]
) -> AsyncIterator[str | Completion | ToolCall]:
    """Stream a chat completion: text deltas as they arrive, then a Completion (or ToolCall).

    A stream that ends without a finish reason was cut off: that raises LLMError, so a
    partial answer is never mistaken for a complete one. Every LLMError raised names the
    model, the provider's host and the underlying error's class.
    """
    try:
        async for item in _stream_reply(provider=provider, body=body):
            yield item
    except LLMError as error:
        raise attributed(error, provider=provider, model=body.get("model"))  # noqa: B904


async def _stream_reply(
    *, provider: Provider, body: dict[str, Any]
) -> AsyncIterator[str | Completion | ToolCall]:
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    started, reply = time.perf_counter(), _Reply(model=body["model"])
    try:
        chunks = await client_for(provider).post(
            CHAT_COMPLETIONS, cast_to=object, body=body, stream=True, stream_cls=AsyncStream[object]
        )
        async for chunk in chunks:
            if not isinstance(chunk, dict):
                raise LLMError("The model provider's answer could not be read.")
            if (text := reply.absorb(chunk)) is not None:
                yield text
    except UPSTREAM_ERRORS as error:
        if reply.parts:
            broke = "The model provider's stream broke off before the answer was complete."
            raise LLMError(broke) from error
        raise describe_upstream_error(error, provider=provider) from error
    except (AttributeError, TypeError) as error:  # a chunk of an unexpected shape
        raise LLMError("The model provider's answer could not be read.") from error
    if reply.finish is None:
        raise LLMError("The model provider's stream ended before the answer was complete.")
    yield reply.result(started)


async def stream(
    *, provider: Provider, model: str, messages: Messages
) -> AsyncIterator[str | Completion]:
    """Yield text deltas as they arrive, then one Completion with the totals (no tools)."""
    async for item in stream_reply(provider=provider, body={"model": model, "messages": messages}):
        if isinstance(item, ToolCall):  # none were offered
            raise LLMError("The model asked for a tool this service does not offer.")
        yield item


async def list_models(*, provider: Provider) -> list[str]:
    """The model ids the provider lists (GET /models), through the same clients as answers
    (so a guarded provider is reached only through the egress guard)."""
    try:
        data = await client_for(provider).get("/models", cast_to=object)
    except UPSTREAM_ERRORS as error:
        failure = describe_upstream_error(error, provider=provider)
        raise attributed(failure, provider=provider, model=None, cause=error) from error
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        failure = LLMError("The model provider's list of models could not be read.")
        raise attributed(failure, provider=provider, model=None)
    ids = (entry.get("id") for entry in entries if isinstance(entry, dict))
    return sorted({model for model in ids if isinstance(model, str) and model})
