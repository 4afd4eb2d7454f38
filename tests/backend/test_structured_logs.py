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
