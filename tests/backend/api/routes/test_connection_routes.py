"""Admin provider connections: stored with the key shown by its last four characters only,
a test that lists the provider's models, and answers routed to the connection offering the
chosen model."""

from pathlib import Path

import pytest
from chat_factories import create_conversation, create_user, send_message
from conftest import TEST_DB
from fake_openai_server import FakeOpenAIServer, received
from fastapi.testclient import TestClient

from backend.core.config import settings
from tests.file_scan import files_containing

KEY = "sk-admin-connection-key-WXYZ"


def add_connection(client: TestClient, admin, base_url: str, **body) -> dict:  # noqa: ANN001
    body = {"name": "Fake", "base_url": base_url, "api_key": KEY, "models": ["fake-large"], **body}
    response = client.post("/api/admin/connections", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_connections_are_admin_only(client: TestClient) -> None:
    user = create_user()
    assert client.get("/api/admin/connections", headers=user.headers).status_code == 403
    body = {"name": "x", "base_url": "https://api.example.com/v1"}
    assert client.post("/api/admin/connections", json=body, headers=user.headers).status_code == 403
    assert client.post("/api/admin/connections/test", json=body).status_code == 401


def test_the_key_is_never_shown_again_in_full(client: TestClient, test_dir: Path) -> None:
    admin = create_user(is_admin=True)
    created = add_connection(client, admin, "https://llm.example.com/v1/")
    assert created["base_url"] == "https://llm.example.com/v1"
    assert created["api_key_hint"] == "…WXYZ" and created["has_api_key"] is True
    listed = client.get("/api/admin/connections", headers=admin.headers)
    assert KEY not in listed.text and listed.json()["data"][0]["api_key_hint"] == "…WXYZ"
    assert listed.json()["server_connection"] == "mock" and listed.json()["guarded"] is False
    if TEST_DB == "deltadb":  # every row encrypted at rest: the key is nowhere on disk
        # read by a child: closing a descriptor of the open replica here would drop this
        # process's SQLite locks on it (see tests/file_scan.py)
        assert files_containing(test_dir / "openchat", KEY.encode()) == []


def test_update_keeps_absent_fields_and_an_empty_key_removes_it(client: TestClient) -> None:
    admin = create_user(is_admin=True)
    connection = add_connection(client, admin, "https://llm.example.com/v1")
    url = f"/api/admin/connections/{connection['id']}"
    renamed = client.patch(
        url, json={"name": "Renamed", "models": ["a", "b"]}, headers=admin.headers
    )
    assert renamed.json()["api_key_hint"] == "…WXYZ" and renamed.json()["models"] == ["a", "b"]
    cleared = client.patch(url, json={"api_key": ""}, headers=admin.headers).json()
    assert cleared["has_api_key"] is False and cleared["name"] == "Renamed"
    assert client.delete(url, headers=admin.headers).status_code == 200
    assert client.get("/api/admin/connections", headers=admin.headers).json()["data"] == []
    assert client.delete(url, headers=admin.headers).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "base_url": "ftp://example.com"},
        {"name": "x", "base_url": "https://user:pw@example.com/v1"},
        {"name": "x", "base_url": "https://example.com\r\n/v1"},
        {"name": "", "base_url": "https://example.com/v1"},
        {"name": "x", "base_url": "https://example.com/v1", "models": [""]},
        {"name": "x", "base_url": "https://example.com/v1", "extra": 1},
    ],
)
def test_bad_connections_are_422(client: TestClient, body: dict) -> None:
    admin = create_user(is_admin=True)
    response = client.post("/api/admin/connections", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text


def test_names_are_unique(client: TestClient) -> None:
    admin = create_user(is_admin=True)
    add_connection(client, admin, "https://a.example.com/v1")
    body = {"name": "Fake", "base_url": "https://b.example.com/v1"}
    response = client.post("/api/admin/connections", json=body, headers=admin.headers)
    assert response.status_code == 409


def test_the_test_lists_the_providers_models(
    client: TestClient, fake_openai: FakeOpenAIServer
) -> None:
    admin = create_user(is_admin=True)
    received.clear()
    body = {"base_url": fake_openai.base_url, "api_key": "sk-typed-1234"}
    listed = client.post("/api/admin/connections/test", json=body, headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"models": ["fake-large", "fake-small"]}
    assert received[-1]["authorization"] == "Bearer sk-typed-1234"
    # A stored connection is tested with its stored key.
    stored = add_connection(client, admin, fake_openai.base_url)
    again = client.post(
        "/api/admin/connections/test", json={"connection_id": stored["id"]}, headers=admin.headers
    )
    assert again.status_code == 200 and received[-1]["authorization"] == f"Bearer {KEY}"


def test_a_failing_test_says_so_in_a_sentence(client: TestClient) -> None:
    admin = create_user(is_admin=True)
    from fake_openai_server import free_port

    body = {"base_url": f"http://127.0.0.1:{free_port()}/v1"}  # nothing listens there
    response = client.post("/api/admin/connections/test", json=body, headers=admin.headers)
    assert response.status_code == 502 and response.json()["detail"].endswith(".")


def test_with_the_guard_on_admin_connections_follow_the_users_rules(
    client: TestClient, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "GUARD_ADMIN_CONNECTIONS", True)
    admin = create_user(is_admin=True)
    body = {"name": "Local", "base_url": fake_openai.base_url}
    refused = client.post("/api/admin/connections", json=body, headers=admin.headers)
    assert refused.status_code == 422
    received.clear()
    tested = client.post(
        "/api/admin/connections/test",
        json={"base_url": fake_openai.base_url},
        headers=admin.headers,
    )
    assert tested.status_code == 422 and received == []


def test_answers_go_to_the_connection_offering_the_model(
    client: TestClient, fake_openai: FakeOpenAIServer
) -> None:
    admin, user = create_user(is_admin=True), create_user()
    add_connection(client, admin, fake_openai.base_url)
    listed = client.get("/api/models", headers=user.headers).json()["data"]
    assert [(m["id"], m["offline"]) for m in listed] == [
        ("gpt-4o-mini", True),  # the mock answers these
        ("gpt-4o", True),
        ("fake-large", False),  # the connection does
    ]
    uuid = create_conversation(client, user)["uuid"]
    received.clear()
    answer = send_message(client, user, uuid, "hello", model="fake-large")
    assert answer.status_code == 201, answer.text
    assert answer.json()["assistant_message"]["model"] == "fake-large-2026"
    assert received[-1]["authorization"] == f"Bearer {KEY}"
    # Other models are still answered by the server's connection (here the mock).
    other = send_message(client, user, uuid, "and you?", model="gpt-4o")
    assert other.json()["assistant_message"]["model"] == "mock"


def test_a_disabled_connection_offers_nothing(
    client: TestClient, fake_openai: FakeOpenAIServer
) -> None:
    admin, user = create_user(is_admin=True), create_user()
    add_connection(client, admin, fake_openai.base_url, enabled=False)
    models = [m["id"] for m in client.get("/api/models", headers=user.headers).json()["data"]]
    assert "fake-large" not in models
    uuid = create_conversation(client, user)["uuid"]
    assert send_message(client, user, uuid, "hello", model="fake-large").status_code == 403
