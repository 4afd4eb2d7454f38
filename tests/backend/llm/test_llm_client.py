"""The `openai`-SDK client against a real OpenAI-compatible server on loopback."""

import pytest
from fake_openai_server import FakeOpenAIServer, received

from backend.core.config import settings
from backend.llm import client as llm
from backend.llm.client import Completion, LLMError, Provider


def provider(server: FakeOpenAIServer) -> Provider:
    return Provider(api_key="sk-test", base_url=server.base_url)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "LLM_TIMEOUT_SECONDS", 1.0)


async def collect(server: FakeOpenAIServer, text: str) -> tuple[list[str], Completion]:
    deltas, final = [], None
    async for item in llm.stream(provider=provider(server), model="m1", messages=ask(text)):
        if isinstance(item, Completion):
            final = item
        else:
            deltas.append(item)
    assert final is not None
    return deltas, final


async def test_complete_returns_text_model_and_usage(fake_openai: FakeOpenAIServer) -> None:
    result = await llm.complete(provider=provider(fake_openai), model="m1", messages=ask("hi"))
    assert result.content == "Echo: hi" and result.model == "m1-2026"
    assert (result.tokens_prompt, result.tokens_completion, result.tokens_total) == (11, 3, 14)
    assert result.finish_reason == "stop" and result.completion_time_ms >= 0
    assert received[-1]["authorization"] == "Bearer sk-test"
    assert received[-1]["body"]["messages"][0]["role"] == "system"


async def test_stream_yields_deltas_then_usage(fake_openai: FakeOpenAIServer) -> None:
    deltas, final = await collect(fake_openai, "one two three")
    assert deltas == ["Echo:", " one", " two", " three"]
    assert final.content == "Echo: one two three"
    assert (final.tokens_prompt, final.tokens_completion, final.tokens_total) == (11, 4, 15)
    assert received[-1]["body"]["stream"] is True


@pytest.mark.parametrize(
    "prompt,status,phrase",
    [
        ("FAIL 401", 502, "API key (401)"),
        ("FAIL 429", 502, "rate limiting requests (429)"),
        ("FAIL 500", 502, "error (500)"),
        ("FAIL 404", 502, "error (404)"),
        ("SLOW", 504, "did not answer within 1 s"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_upstream_errors_become_clear_llm_errors(
    fake_openai: FakeOpenAIServer, prompt: str, status: int, phrase: str, streamed: bool
) -> None:
    with pytest.raises(LLMError) as caught:
        if streamed:
            await collect(fake_openai, prompt)
        else:
            await llm.complete(provider=provider(fake_openai), model="m1", messages=ask(prompt))
    assert caught.value.status_code == status and phrase in caught.value.detail


async def test_stream_broken_midway_is_an_error_not_a_short_answer(
    fake_openai: FakeOpenAIServer,
) -> None:
    seen: list[str] = []
    with pytest.raises(LLMError, match="broke off"):
        async for item in llm.stream(
            provider=provider(fake_openai), model="m1", messages=ask("BREAK it please")
        ):
            seen.append(item)  # type: ignore[arg-type]
    assert len(seen) == 2 and not any(isinstance(item, Completion) for item in seen)


async def test_unreachable_provider_is_a_clear_error() -> None:
    dead = Provider(api_key="sk", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(LLMError, match="could not be reached"):
        await llm.complete(provider=dead, model="m1", messages=ask("hi"))


async def test_clients_are_reused_per_provider(fake_openai: FakeOpenAIServer) -> None:
    assert llm.client_for(provider(fake_openai)) is llm.client_for(provider(fake_openai))
    other = Provider(api_key="sk-other", base_url=fake_openai.base_url)
    assert llm.client_for(other) is not llm.client_for(provider(fake_openai))


async def test_the_client_cache_is_bounded_and_shares_one_pool(
    fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "PROVIDER_CLIENT_CACHE_SIZE", 5)
    clients = [
        llm.client_for(Provider(api_key=f"sk-{i}", base_url=fake_openai.base_url))
        for i in range(12)
    ]
    assert llm.cached_client_count() == 5
    # One HTTP client (connection pool) behind every SDK client of the same kind.
    assert len({id(client._client) for client in clients}) == 1
    # The most recently used stay; a client used again is not rebuilt.
    again = Provider(api_key="sk-11", base_url=fake_openai.base_url)
    assert llm.client_for(again) is clients[-1]
    result = await llm.complete(provider=again, model="m1", messages=ask("hi"))
    assert result.content == "Echo: hi" and received[-1]["authorization"] == "Bearer sk-11"


async def test_provider_failures_name_model_host_and_error_class(
    fake_openai: FakeOpenAIServer,
) -> None:
    with pytest.raises(LLMError) as caught:
        await llm.complete(provider=provider(fake_openai), model="m1", messages=ask("FAIL 500"))
    fields = caught.value.log_fields()
    assert fields["model"] == "m1" and fields["provider_host"] == "127.0.0.1"
    assert fields["cause"] == "InternalServerError"
    assert "sk-test" not in repr(fields)
