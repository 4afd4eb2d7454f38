"""Per-user settings (the key is never returned) and the models a user may pick."""

import pytest
from chat_factories import create_user
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
        "data": [{"id": "gpt-4o-mini"}, {"id": "gpt-4o"}],
        "default_model": "gpt-4o-mini",
    }


def test_models_follow_the_personal_list_and_default(client: TestClient) -> None:
    admin, user = create_user(is_admin=True), create_user()
    client.patch(
        f"/api/admin/users/{user.id}", json={"allowed_models": ["gpt-4o"]}, headers=admin.headers
    )
    body = client.get("/api/models", headers=user.headers).json()
    assert body == {"data": [{"id": "gpt-4o"}], "default_model": "gpt-4o"}
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
