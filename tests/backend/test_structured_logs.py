"""Logs are JSON lines and never contain message content, passwords or keys."""

import json
import logging

import pytest
from chat_factories import DEFAULT_PASSWORD, create_conversation, create_user, send_message
from fastapi.testclient import TestClient

from backend.core.logging import JsonFormatter
from backend.middleware import loggable_path


def test_formatter_emits_one_json_object_with_extra_fields() -> None:
    record = logging.makeLogRecord({"msg": "request", "levelname": "INFO", "status": 201})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["event"] == "request" and entry["status"] == 201 and "time" in entry


def test_ids_are_masked_in_logged_paths() -> None:
    path = "/api/conversations/3f2b8c1e-1111-4222-8333-444455556666/messages"
    assert loggable_path(path) == "/api/conversations/{id}/messages"
    assert loggable_path("/api/admin/users/17") == "/api/admin/users/{id}"


@pytest.mark.usefixtures("user_connections")
def test_a_whole_session_logs_no_secrets(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.post(
        "/api/auth/register",
        json={"username": "logan", "email": "logan@example.com", "password": DEFAULT_PASSWORD},
    )
    client.post("/api/auth/login", json={"username": "logan", "password": DEFAULT_PASSWORD})
    keeper, chatter = create_user(), create_user()
    client.put(
        "/api/settings", json={"openai_api_key": "sk-never-log-me-0000"}, headers=keeper.headers
    )
    uuid = create_conversation(client, chatter)["uuid"]
    send_message(client, chatter, uuid, "a very private question")
    send_message(client, chatter, uuid, "private failure [mock-error:401]")
    client.post(
        "/chat/message", json={"message": "quick [mock-error:500]"}, headers=chatter.headers
    )
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(record) for record in caplog.records)
    assert '"event": "request"' in text and '"event": "llm_failed"' in text
    secrets = (DEFAULT_PASSWORD, "sk-never-log-me-0000", "very private", "private failure", "quick")
    for secret in (*secrets, keeper.token, chatter.token):
        assert secret not in text


def test_provider_failures_are_logged_on_every_answer_path(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backend.services.answering")
    user = create_user()
    plain = create_conversation(client, user)["uuid"]
    client.patch(f"/api/conversations/{plain}", json={"tools_enabled": False}, headers=user.headers)
    with_tools = create_conversation(client, user)["uuid"]
    send_message(client, user, plain, "json path [mock-error:500]")
    send_message(client, user, with_tools, "tools path [mock-error:502]")
    client.post(
        f"/api/conversations/{plain}/messages",
        json={"content": "stream path [mock-error:503]"},
        headers={**user.headers, "Accept": "text/event-stream"},
    )
    client.post("/chat/message", json={"message": "quick [mock-error:429]"}, headers=user.headers)
    failures = [r for r in caplog.records if r.getMessage() == "llm_failed"]
    assert len(failures) == 4
    assert {r.levelname for r in failures} == {"WARNING"}
    assert {r.model for r in failures} == {"gpt-4o-mini"}  # type: ignore[attr-defined]
    hosts = {r.provider_host for r in failures}  # type: ignore[attr-defined]
    assert hosts == {"mock-openai.internal"}  # the built-in mock's own name
    classes = [r.error_class for r in failures]  # type: ignore[attr-defined]
    assert classes == ["InternalServerError"] * 3 + ["RateLimitError"]
    text = "\n".join(JsonFormatter().format(record) for record in failures)
    for secret in ("json path", "tools path", "stream path", "quick", user.token):
        assert secret not in text


def test_a_real_providers_failure_names_its_host_never_its_key(
    client: TestClient, caplog: pytest.LogCaptureFixture, real_provider: object
) -> None:
    caplog.set_level(logging.WARNING, logger="backend.services.answering")
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    assert send_message(client, user, uuid, "FAIL 500").status_code == 502
    (failure,) = [r for r in caplog.records if r.getMessage() == "llm_failed"]
    assert failure.provider_host == "127.0.0.1"  # type: ignore[attr-defined]
    assert failure.error_class == "InternalServerError"  # type: ignore[attr-defined]
    assert "sk-server-key" not in JsonFormatter().format(failure)
