"""Asking questions (JSON and server-sent events), history, regenerate, clear, upstream errors."""

import pytest
from chat_factories import create_conversation, create_user, parse_sse, send_message
from fake_openai_server import FakeOpenAIServer, received
from fastapi.testclient import TestClient

from backend.core.db import SessionLocal
from backend.llm.mock import count_tokens, prompt_tokens
from backend.models import UserSettings

SSE = {"Accept": "text/event-stream"}


def stream_message(client: TestClient, user, uuid: str, content: str, **body) -> list:
    with client.stream(
        "POST",
        f"/api/conversations/{uuid}/messages",
        json={"content": content, **body},
        headers={**user.headers, **SSE},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.read().decode())


def messages_of(client: TestClient, user, uuid: str) -> list[dict]:
    return client.get(f"/api/conversations/{uuid}/messages", headers=user.headers).json()["data"]


def test_json_answer_has_both_messages_usage_and_a_title(client: TestClient) -> None:
    user = create_user()
    conversation = create_conversation(client, user)
    response = send_message(client, user, conversation["uuid"], "What is DeltaDB?")
    assert response.status_code == 201
    body = response.json()
    question, answer = body["user_message"], body["assistant_message"]
    assert question["role"] == "user" and question["content"] == "What is DeltaDB?"
    assert answer["role"] == "assistant" and answer["content"].startswith("Mock answer #1")
    assert (question["position"], answer["position"]) == (0, 1)
    usage = answer["response"]
    # The built-in mock answers under its own name, whichever model was asked for.
    assert usage["model_used"] == answer["model"] == "mock"
    prompt = [{"role": "user", "content": "What is DeltaDB?"}]
    assert usage["tokens_prompt"] == prompt_tokens(prompt)
    assert usage["tokens_completion"] == count_tokens(answer["content"])
    assert usage["tokens_total"] == usage["tokens_prompt"] + usage["tokens_completion"]
    assert usage["completion_time_ms"] >= 0 and usage["finish_reason"] == "stop"
    assert body["conversation"]["title"] == "What is DeltaDB?"


def test_title_is_set_once_from_the_first_exchange(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    long_question = "Please explain how the encrypted store keeps every row private on disk " * 3
    first = send_message(client, user, uuid, long_question).json()["conversation"]["title"]
    assert first.endswith("…") and len(first) <= 61
    second = send_message(client, user, uuid, "Another question").json()["conversation"]["title"]
    assert second == first


def test_history_is_in_order_and_paged(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    for number in range(3):
        send_message(client, user, uuid, f"question {number}")
    page = client.get(f"/api/conversations/{uuid}/messages?limit=2&offset=4", headers=user.headers)
    assert page.json()["count"] == 6
    last_two = page.json()["data"]
    assert [m["role"] for m in last_two] == ["user", "assistant"]
    assert last_two[0]["content"] == "question 2" and "question 2" in last_two[1]["content"]
    assert [m["position"] for m in messages_of(client, user, uuid)] == list(range(6))


def test_the_model_sees_the_earlier_conversation(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    send_message(client, user, uuid, "first")
    answer = send_message(client, user, uuid, "second").json()["assistant_message"]
    assert answer["content"].startswith("Mock answer #2")  # the mock counts user turns


def test_streamed_answer_events(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    events = stream_message(client, user, uuid, "Stream this please")
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"} and len(names) > 5
    start, done = events[0][1], events[-1][1]
    assert start["conversation_uuid"] == uuid and start["model"] == "gpt-4o-mini"
    streamed = "".join(data["content"] for name, data in events if name == "delta")
    assert done["assistant_message"]["content"] == streamed
    assert done["user_message"]["uuid"] == start["user_message"]["uuid"]
    assert done["assistant_message"]["response"]["tokens_completion"] == count_tokens(streamed)
    assert done["conversation"]["title"] == "Stream this please"
    stored = messages_of(client, user, uuid)
    assert [m["uuid"] for m in stored] == [
        done["user_message"]["uuid"],
        done["assistant_message"]["uuid"],
    ]


def test_streamed_upstream_failure_keeps_the_question_and_stores_no_answer(
    client: TestClient,
) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    events = stream_message(client, user, uuid, "please [mock-break] now and then more words")
    assert events[-1][0] == "error"
    assert events[-1][1]["status"] == 502 and "broke off" in events[-1][1]["detail"]
    assert any(name == "delta" for name, _ in events)  # it did break half-way
    assert [m["role"] for m in messages_of(client, user, uuid)] == ["user"]


@pytest.mark.parametrize("status", [401, 429, 500])
def test_json_upstream_errors_are_502_with_a_clear_detail(client: TestClient, status: int) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    response = send_message(client, user, uuid, f"[mock-error:{status}]")
    assert response.status_code == 502
    assert f"({status})" in response.json()["detail"]
    assert [m["role"] for m in messages_of(client, user, uuid)] == ["user"]


def test_model_resolution_order(client: TestClient, real_provider: FakeOpenAIServer) -> None:
    """Against a provider that names the model it was asked for (the mock names itself)."""
    user = create_user()
    with SessionLocal() as session:
        session.add(UserSettings(user_id=user.id, default_model="mock-model"))
        session.commit()
    client_models = {"models": ["gpt-4o-mini", "gpt-4o", "mock-model"]}
    admin = create_user(is_admin=True)
    client.put("/api/admin/models", json=client_models, headers=admin.headers)
    plain = create_conversation(client, user)["uuid"]
    with_default = create_conversation(client, user, default_model="gpt-4o")["uuid"]

    def model_for(uuid: str, **body) -> str:
        response = send_message(client, user, uuid, "which model?", **body)
        return response.json()["assistant_message"]["model"]

    assert model_for(plain) == "mock-model-2026"  # the user's default
    assert model_for(with_default) == "gpt-4o-2026"  # the conversation's default wins
    assert model_for(with_default, model="gpt-4o-mini") == "gpt-4o-mini-2026"  # the override


def test_server_default_is_used_without_any_choice(
    client: TestClient, real_provider: FakeOpenAIServer
) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    answer = send_message(client, user, uuid, "hi").json()["assistant_message"]
    assert answer["model"] == "gpt-4o-mini-2026"


def test_mock_answers_are_recorded_as_the_mock(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user, default_model="gpt-4o")["uuid"]
    answer = send_message(client, user, uuid, "hi").json()["assistant_message"]
    assert answer["model"] == answer["response"]["model_used"] == "mock"
    rows = client.get("/api/usage", headers=user.headers).json()["data"]
    assert {row["model"] for row in rows if row["messages_sent"]} == {"mock"}


def test_disallowed_model_is_403_and_nothing_is_stored(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    response = send_message(client, user, uuid, "hi", model="gpt-5-secret")
    assert response.status_code == 403 and "gpt-5-secret" in response.json()["detail"]
    assert messages_of(client, user, uuid) == []


def test_regenerate_replaces_the_last_answer(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    first = send_message(client, user, uuid, "Tell me a joke").json()
    response = client.post(
        f"/api/conversations/{uuid}/regenerate", json={"model": "gpt-4o"}, headers=user.headers
    )
    assert response.status_code == 201
    again = response.json()
    assert again["user_message"]["uuid"] == first["user_message"]["uuid"]
    assert again["assistant_message"]["model"] == "mock"  # asked for gpt-4o; the mock answered
    stored = messages_of(client, user, uuid)
    assert [m["uuid"] for m in stored] == [
        first["user_message"]["uuid"],
        again["assistant_message"]["uuid"],
    ]


def test_a_question_names_its_chat_before_the_answer_arrives(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    send_message(client, user, uuid, "[mock-error:500] Plans for the garden")
    title = client.get(f"/api/conversations/{uuid}", headers=user.headers).json()["title"]
    assert title == "[mock-error:500] Plans for the garden"


def test_regenerate_after_a_failed_answer_answers_the_kept_question(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    send_message(client, user, uuid, "[mock-error:500]")
    events = []
    with client.stream(
        "POST", f"/api/conversations/{uuid}/regenerate", json={}, headers={**user.headers, **SSE}
    ) as response:
        events = parse_sse(response.read().decode())
    # The mock fails again on the same prompt: still an error event, question still kept.
    assert events[-1][0] == "error"
    assert [m["role"] for m in messages_of(client, user, uuid)] == ["user"]


def test_regenerate_on_an_empty_conversation_is_400(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    response = client.post(f"/api/conversations/{uuid}/regenerate", headers=user.headers)
    assert response.status_code == 400


def test_clear_history(client: TestClient) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    send_message(client, user, uuid, "one")
    assert (
        client.delete(f"/api/conversations/{uuid}/messages", headers=user.headers).status_code
        == 200
    )
    assert messages_of(client, user, uuid) == []
    assert send_message(client, user, uuid, "again").json()["user_message"]["position"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"content": ""},
        {"content": "   \n "},
        {"content": 42},
        {"content": ["a"]},
        {"content": "ok", "model": ""},
        {"content": "ok", "extra": True},
        {"content": "nul\x00byte"},
    ],
)
def test_invalid_message_bodies_are_422(client: TestClient, body: dict) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    response = client.post(f"/api/conversations/{uuid}/messages", json=body, headers=user.headers)
    assert response.status_code == 422


def test_too_long_message_is_422(client: TestClient) -> None:
    from backend.core.config import settings

    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    response = send_message(client, user, uuid, "x" * (settings.MAX_MESSAGE_CHARS + 1))
    assert response.status_code == 422
    assert len(response.content) < 2000  # the input is not echoed back


# --- against a real OpenAI-compatible server on loopback ------------------------------------


def test_real_provider_json_answer(client: TestClient, real_provider: FakeOpenAIServer) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    body = send_message(client, user, uuid, "hello there").json()
    assert body["assistant_message"]["content"] == "Echo: hello there"
    assert body["assistant_message"]["response"]["model_used"] == "gpt-4o-mini-2026"
    assert body["assistant_message"]["response"]["tokens_total"] == 14
    assert received[-1]["authorization"] == "Bearer sk-server-key"


def test_real_provider_streamed_answer_with_usage(
    client: TestClient, real_provider: FakeOpenAIServer
) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    events = stream_message(client, user, uuid, "stream me now")
    assert "".join(d["content"] for n, d in events if n == "delta") == "Echo: stream me now"
    usage = events[-1][1]["assistant_message"]["response"]
    assert (usage["tokens_prompt"], usage["tokens_completion"], usage["tokens_total"]) == (
        11,
        4,
        15,
    )
    assert received[-1]["body"]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    "prompt,status,phrase",
    [
        ("FAIL 401", 502, "(401)"),
        ("FAIL 429", 502, "(429)"),
        ("FAIL 500", 502, "(500)"),
        ("FAIL 503", 502, "(503)"),
        ("SLOW", 504, "did not answer"),
    ],
)
def test_real_provider_errors_reach_the_user(
    client: TestClient, real_provider: FakeOpenAIServer, prompt: str, status: int, phrase: str
) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    response = send_message(client, user, uuid, prompt)
    assert response.status_code == status and phrase in response.json()["detail"]
    events = stream_message(client, user, uuid, prompt)
    assert events[-1][0] == "error" and events[-1][1]["status"] == status
    assert phrase in events[-1][1]["detail"]
    assert [m["role"] for m in messages_of(client, user, uuid)] == ["user", "user"]


def test_real_provider_stream_broken_midway(
    client: TestClient, real_provider: FakeOpenAIServer
) -> None:
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    events = stream_message(client, user, uuid, "BREAK after a couple of words please")
    assert [n for n, _ in events].count("delta") == 2
    assert events[-1][0] == "error" and "broke off" in events[-1][1]["detail"]
    assert [m["role"] for m in messages_of(client, user, uuid)] == ["user"]


@pytest.mark.usefixtures("user_connections")
def test_users_own_key_and_base_url_are_used(
    client: TestClient, real_provider: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.core.config import settings

    monkeypatch.setattr(settings, "OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # unreachable
    user = create_user()
    client.put(
        "/api/settings",
        json={"openai_api_key": "sk-user-own-key-1234", "openai_base_url": real_provider.base_url},
        headers=user.headers,
    )
    uuid = create_conversation(client, user)["uuid"]
    assert send_message(client, user, uuid, "mine").status_code == 201
    assert received[-1]["authorization"] == "Bearer sk-user-own-key-1234"


@pytest.mark.usefixtures("user_connections")
def test_users_base_url_never_receives_the_server_key(
    client: TestClient, real_provider: FakeOpenAIServer
) -> None:
    user = create_user()
    client.put(
        "/api/settings", json={"openai_base_url": real_provider.base_url}, headers=user.headers
    )
    uuid = create_conversation(client, user)["uuid"]
    send_message(client, user, uuid, "hi")
    assert received[-1]["authorization"] != "Bearer sk-server-key"
