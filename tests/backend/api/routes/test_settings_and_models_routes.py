"""Per-user settings (the key is never returned) and the models a user may pick."""

import pytest
from chat_factories import create_conversation, create_user, parse_sse, send_message
from fake_openai_server import FakeOpenAIServer
from fastapi.testclient import TestClient


def test_settings_start_empty(client: TestClient) -> None:
    user = create_user()
    assert client.get("/api/settings", headers=user.headers).json() == {
        "openai_base_url": None,
        "default_model": None,
        "has_api_key": False,
        "api_key_hint": None,
        "user_connections_allowed": False,
    }


@pytest.mark.usefixtures("user_connections")
def test_api_key_is_stored_but_never_returned_in_full(client: TestClient) -> None:
    user = create_user()
    key = "sk-proj-abcdefghijklmnop-WXYZ"
    saved = client.put("/api/settings", json={"openai_api_key": key}, headers=user.headers)
    assert saved.status_code == 200
    for response in (saved, client.get("/api/settings", headers=user.headers)):
        assert key not in response.text
        assert response.json()["has_api_key"] is True
        assert response.json()["api_key_hint"] == "…WXYZ"


@pytest.mark.usefixtures("user_connections")
def test_partial_updates_keep_absent_fields_and_null_clears(client: TestClient) -> None:
    user = create_user()
    client.put(
        "/api/settings",
        json={"openai_api_key": "sk-1234567890abcd", "openai_base_url": "https://llm.example/v1/"},
        headers=user.headers,
    )
    kept = client.put(
        "/api/settings", json={"default_model": "gpt-4o"}, headers=user.headers
    ).json()
    assert kept["openai_base_url"] == "https://llm.example/v1" and kept["has_api_key"]
    assert kept["default_model"] == "gpt-4o"
    cleared = client.put(
        "/api/settings", json={"openai_api_key": None, "openai_base_url": ""}, headers=user.headers
    ).json()
    assert cleared["has_api_key"] is False and cleared["openai_base_url"] is None
    assert cleared["default_model"] == "gpt-4o"


@pytest.mark.parametrize(
    "body",
    [
        {"openai_base_url": "ftp://example.com"},
        {"openai_base_url": "not a url"},
        {"openai_api_key": 12345},
        {"theme": "dark"},
        {"openai_api_key": "k" * 513},
    ],
)
@pytest.mark.usefixtures("user_connections")
def test_invalid_settings_are_422(client: TestClient, body: dict) -> None:
    user = create_user()
    assert client.put("/api/settings", json=body, headers=user.headers).status_code == 422


def test_default_model_must_be_allowed(client: TestClient) -> None:
    user = create_user()
    response = client.put(
        "/api/settings", json={"default_model": "forbidden"}, headers=user.headers
    )
    assert response.status_code == 403


def test_models_list_global_by_default(client: TestClient) -> None:
    user = create_user()
    body = client.get("/api/models", headers=user.headers).json()
    assert body == {
        # The mock answers for every name here: no real provider is configured.
        "data": [{"id": "gpt-4o-mini", "offline": True}, {"id": "gpt-4o", "offline": True}],
        "default_model": "gpt-4o-mini",
    }


def test_models_follow_the_personal_list_and_default(client: TestClient) -> None:
    admin, user = create_user(is_admin=True), create_user()
    client.patch(
        f"/api/admin/users/{user.id}", json={"allowed_models": ["gpt-4o"]}, headers=admin.headers
    )
    body = client.get("/api/models", headers=user.headers).json()
    assert body == {"data": [{"id": "gpt-4o", "offline": True}], "default_model": "gpt-4o"}
    client.put("/api/settings", json={"default_model": "gpt-4o"}, headers=user.headers)
    assert client.get("/api/models", headers=user.headers).json()["default_model"] == "gpt-4o"


def test_settings_and_models_need_login(client: TestClient) -> None:
    assert client.get("/api/settings").status_code == 401
    assert client.put("/api/settings", json={}).status_code == 401
    assert client.get("/api/models").status_code == 401


def test_blank_default_model_clears_it(client: TestClient) -> None:
    user = create_user()
    chosen = client.get("/api/models", headers=user.headers).json()["data"][0]["id"]
    client.put("/api/settings", json={"default_model": chosen}, headers=user.headers)
    response = client.put("/api/settings", json={"default_model": ""}, headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.json()["default_model"] is None


def _store_settings_directly(user_id: int, **values: str) -> None:
    """Settings as an older version may have stored them, without today's checks."""
    from backend.core.db import SessionLocal
    from backend.models import UserSettings

    with SessionLocal() as session:
        session.add(UserSettings(user_id=user_id, **values))
        session.commit()


def test_personal_connections_are_off_by_default(client: TestClient) -> None:
    user = create_user()
    for body in (
        {"openai_api_key": "sk-mine-1234567890"},
        {"openai_base_url": "https://api.example.com/v1"},
    ):
        response = client.put("/api/settings", json=body, headers=user.headers)
        assert response.status_code == 403
        assert "turned off" in response.json()["detail"]
    # Clearing is always allowed.
    cleared = client.put("/api/settings", json={"openai_api_key": None}, headers=user.headers)
    assert cleared.status_code == 200


def test_settings_stored_while_allowed_are_ignored_once_disallowed(
    client: TestClient, real_provider: FakeOpenAIServer
) -> None:
    from fake_openai_server import received

    user = create_user()
    _store_settings_directly(
        user.id, openai_api_key="sk-user-1234567890", openai_base_url="http://127.0.0.1:9/v1"
    )
    uuid = create_conversation(client, user)["uuid"]
    assert send_message(client, user, uuid, "hi").status_code == 201
    assert received[-1]["authorization"] == "Bearer sk-server-key"  # the server's connection


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/v1",
        "http://[::1]:9/v1",
        "http://2130706433/v1",
        "http://0x7f000001/v1",
        "http://169.254.169.254/latest",
        "http://metadata.google.internal/v1",
        "http://user:pw@api.example.com/v1",
        "http://api.example.com\r\n/v1",
        "http://[::1/v1",
    ],
)
def test_unsafe_base_urls_are_422_with_a_sentence(
    client: TestClient, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.core.config import settings

    monkeypatch.setattr(settings, "ALLOW_USER_CONNECTIONS", True)
    user = create_user()
    response = client.put("/api/settings", json={"openai_base_url": url}, headers=user.headers)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    sentence = detail if isinstance(detail, str) else detail[0]["msg"]
    assert (sentence.endswith(".") and "URL" in sentence) or "address" in sentence


@pytest.mark.usefixtures("user_connections")
@pytest.mark.parametrize(
    "stored", ["http://api.example.com\r\nX-Injected: 1/v1", "http://[::1/v1", "http://[zz]:80/v1"]
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_stored_bad_url_is_a_clean_error_on_the_next_message(
    client: TestClient, stored: str, stream: bool
) -> None:
    user = create_user()
    _store_settings_directly(user.id, openai_api_key="sk-user-1234567890", openai_base_url=stored)
    uuid = create_conversation(client, user)["uuid"]
    headers = {**user.headers, "Accept": "text/event-stream"} if stream else user.headers
    response = client.post(
        f"/api/conversations/{uuid}/messages", json={"content": "hello"}, headers=headers
    )
    if stream:
        event, data = parse_sse(response.text)[-1]
        assert event == "error" and data["status"] == 502
        detail = data["detail"]
    else:
        assert response.status_code == 502, response.text
        detail = response.json()["detail"]
    assert "Check its URL and key in Settings" in detail


def test_without_a_model_list_the_mock_offers_only_itself(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing claims to be gpt-4o-mini while the built-in offline model answers."""
    from backend.core.config import settings

    monkeypatch.setattr(settings, "AVAILABLE_MODELS", None)
    monkeypatch.setattr(settings, "DEFAULT_MODEL", None)
    user = create_user()
    assert client.get("/api/models", headers=user.headers).json() == {
        "data": [{"id": "mock", "offline": True}],
        "default_model": "mock",
    }
    uuid = create_conversation(client, user)["uuid"]
    answer = send_message(client, user, uuid, "hi").json()["assistant_message"]
    assert answer["model"] == answer["response"]["model_used"] == "mock"


def test_without_a_model_list_a_real_provider_offers_openais(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, real_provider: FakeOpenAIServer
) -> None:
    from backend.core.config import settings

    monkeypatch.setattr(settings, "AVAILABLE_MODELS", None)
    monkeypatch.setattr(settings, "DEFAULT_MODEL", None)
    body = client.get("/api/models", headers=create_user().headers).json()
    assert body == {
        "data": [{"id": "gpt-4o-mini", "offline": False}, {"id": "gpt-4o", "offline": False}],
        "default_model": "gpt-4o-mini",
    }
