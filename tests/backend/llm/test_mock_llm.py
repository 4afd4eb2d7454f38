"""The built-in mock: OpenAI-compatible, deterministic, consistent token counts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chat_factories import create_user, login_with_cookies
from fastapi.testclient import TestClient

from backend.core.config import settings
from backend.llm import client as llm
from backend.llm.client import Completion, LLMError, server_provider
from backend.llm.mock import count_tokens, mock_answer, prompt_tokens

MESSAGES = [{"role": "user", "content": "Deterministic please"}]


def test_same_prompt_same_answer() -> None:
    assert mock_answer(MESSAGES) == mock_answer([dict(m) for m in MESSAGES])
    assert mock_answer(MESSAGES) != mock_answer([{"role": "user", "content": "other"}])


async def test_streamed_and_whole_answers_agree() -> None:
    whole = await llm.complete(provider=server_provider(), model="gpt-4o", messages=MESSAGES)
    parts, final = [], None
    async for item in llm.stream(provider=server_provider(), model="gpt-4o", messages=MESSAGES):
        if isinstance(item, Completion):
            final = item
        else:
            parts.append(item)
    assert final is not None and "".join(parts) == final.content == whole.content
    assert final.tokens_completion == len(parts) == count_tokens(whole.content)
    assert final.tokens_prompt == whole.tokens_prompt == prompt_tokens(MESSAGES)
    assert final.tokens_total == final.tokens_prompt + final.tokens_completion


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_error_triggers(status: int) -> None:
    messages = [{"role": "user", "content": f"please fail [mock-error:{status}]"}]
    with pytest.raises(LLMError, match=f"{status}"):
        await llm.complete(provider=server_provider(), model="gpt-4o", messages=messages)


async def test_streams_really_arrive_piece_by_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(settings, "MOCK_OPENAI_DELAY_MS", 20)
    arrivals = []
    async for _item in llm.stream(provider=server_provider(), model="gpt-4o", messages=MESSAGES):
        arrivals.append(time.perf_counter())
    assert arrivals[-2] - arrivals[0] > 0.1  # spread over time, not one buffered burst


def test_mock_is_mounted_for_signed_in_clients(client: TestClient) -> None:
    headers = create_user().headers
    models = client.get("/mock-openai/v1/models", headers=headers).json()
    assert [m["id"] for m in models["data"]] == ["mock"]
    reply = client.post(
        "/mock-openai/v1/chat/completions",
        json={"model": "gpt-4o", "messages": MESSAGES},
        headers=headers,
    ).json()
    assert reply["choices"][0]["message"]["content"] == mock_answer(MESSAGES)
    assert (
        reply["usage"]["total_tokens"]
        == reply["usage"]["prompt_tokens"] + reply["usage"]["completion_tokens"]
    )
    bad = client.post("/mock-openai/v1/chat/completions", content=b"nope", headers=headers)
    assert bad.status_code == 400


def test_the_mock_over_http_needs_the_same_sign_in_as_the_api(client: TestClient) -> None:
    body = {"model": "gpt-4o", "messages": MESSAGES}
    assert client.get("/mock-openai/v1/models").status_code == 401
    assert client.post("/mock-openai/v1/chat/completions", json=body).status_code == 401
    bad_token = {"Authorization": "Bearer not-a-session"}
    assert client.get("/mock-openai/v1/models", headers=bad_token).status_code == 401
    user = create_user()
    login_with_cookies(client, user.username)
    # A cookie-authenticated POST needs the CSRF token, as everywhere in the API.
    assert client.post("/mock-openai/v1/chat/completions", json=body).status_code == 403
    csrf = {"X-CSRF-Token": client.cookies["csrf_token"]}
    assert (
        client.post("/mock-openai/v1/chat/completions", json=body, headers=csrf).status_code == 200
    )


def test_the_mock_is_not_mounted_when_a_real_provider_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from backend.main import create_app

    monkeypatch.setattr(settings, "MOCK_OPENAI", False)
    monkeypatch.setattr(settings, "OPENAI_API_KEY", "sk-server-key")
    with TestClient(create_app()) as real:
        headers = create_user().headers
        assert real.get("/mock-openai/v1/models", headers=headers).status_code == 404
        assert real.post("/mock-openai/v1/chat/completions", json={}).status_code in (404, 405)


def test_mock_proposes_a_tool_call_when_a_tool_is_named(client: TestClient) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    messages = [{"role": "user", "content": "please get_weather for Paris"}]
    reply = client.post(
        "/mock-openai/v1/chat/completions",
        json={"model": "gpt-4o", "messages": messages, "tools": tools},
        headers=create_user().headers,
    ).json()
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


# Posts each body to the mock's own app, printing the status codes as one JSON list.
_POST_BODIES = """
import json, sys
from starlette.testclient import TestClient
from backend.llm.mock import mock_openai_app
with TestClient(mock_openai_app, raise_server_exceptions=False) as http:
    codes = [http.post("/v1/chat/completions", json=body).status_code
             for body in json.loads(sys.argv[1])]
print(json.dumps(codes))
"""


def test_malformed_bodies_are_400_even_under_python_o() -> None:
    """`python -O` drops asserts: the body's checks must be ones that stay."""
    bodies = [
        {"model": "m", "messages": "not a list"},
        {"model": 5, "messages": []},
        {"model": "m", "messages": [{"role": "user", "content": "hello"}]},
    ]
    done = subprocess.run(
        [sys.executable, "-O", "-c", _POST_BODIES, json.dumps(bodies)],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [400, 400, 200]
