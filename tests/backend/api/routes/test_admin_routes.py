"""Admin-only routes: users (active, admin, allowed models) and the global model list."""

import pytest
from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    "method,url,body",
    [
        ("GET", "/api/admin/users", None),
        ("PATCH", "/api/admin/users/1", {"is_admin": True}),
        ("GET", "/api/admin/models", None),
        ("PUT", "/api/admin/models", {"models": ["x"]}),
    ],
)
def test_admin_routes_are_403_for_users_and_401_for_strangers(
    client: TestClient, method: str, url: str, body: dict | None
) -> None:
    user = create_user()
    assert client.request(method, url, json=body, headers=user.headers).status_code == 403
    assert client.request(method, url, json=body).status_code == 401


def test_list_users(client: TestClient) -> None:
    admin = create_user(is_admin=True, username="admin1")
    create_user(username="zed")
    body = client.get("/api/admin/users", headers=admin.headers).json()
    assert body["count"] == 2
    assert [u["username"] for u in body["data"]] == ["admin1", "zed"]
    assert body["data"][1]["allowed_models"] == []
    assert "hashed_password" not in str(body)
    page = client.get("/api/admin/users?limit=1&offset=1", headers=admin.headers).json()
    assert [u["username"] for u in page["data"]] == ["zed"]


def test_promote_and_restrict_models(client: TestClient) -> None:
    admin, user = create_user(is_admin=True), create_user()
    response = client.patch(
        f"/api/admin/users/{user.id}",
        json={"is_admin": True, "allowed_models": ["gpt-4o", "gpt-4o", "custom-x"]},
        headers=admin.headers,
    )
    assert response.status_code == 200
    assert response.json()["is_admin"] is True
    assert response.json()["allowed_models"] == ["custom-x", "gpt-4o"]
    # A model outside the global list becomes usable for this user only.
    uuid = create_conversation(client, user)["uuid"]
    answer = send_message(client, user, uuid, "hi", model="custom-x")
    assert answer.status_code == 201
    assert send_message(client, user, uuid, "hi", model="gpt-4o-mini").status_code == 403
    reset = client.patch(
        f"/api/admin/users/{user.id}", json={"allowed_models": None}, headers=admin.headers
    )
    assert reset.json()["allowed_models"] == []


def test_deactivating_a_user_logs_them_out(client: TestClient) -> None:
    admin, user = create_user(is_admin=True), create_user()
    assert client.get("/api/auth/me", headers=user.headers).status_code == 200
    response = client.patch(
        f"/api/admin/users/{user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert client.get("/api/auth/me", headers=user.headers).status_code == 401
    login = client.post(
        "/api/auth/login", json={"username": user.username, "password": user.password}
    )
    assert login.status_code == 403


def test_admin_cannot_lock_themselves_out(client: TestClient) -> None:
    admin = create_user(is_admin=True)
    for body in ({"is_active": False}, {"is_admin": False}):
        response = client.patch(f"/api/admin/users/{admin.id}", json=body, headers=admin.headers)
        assert response.status_code == 400


def test_unknown_user_is_404(client: TestClient) -> None:
    admin = create_user(is_admin=True)
    response = client.patch(
        "/api/admin/users/999999", json={"is_admin": True}, headers=admin.headers
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body", [{"is_active": "maybe"}, {"allowed_models": "gpt-4o"}, {"allowed_models": [""]}]
)
def test_invalid_user_updates_are_422(client: TestClient, body: dict) -> None:
    admin, user = create_user(is_admin=True), create_user()
    response = client.patch(f"/api/admin/users/{user.id}", json=body, headers=admin.headers)
    assert response.status_code == 422


def test_global_models_read_and_replace(client: TestClient) -> None:
    admin, user = create_user(is_admin=True), create_user()
    assert client.get("/api/admin/models", headers=admin.headers).json() == {
        "models": ["gpt-4o-mini", "gpt-4o"],
        "default_model": "gpt-4o-mini",
    }
    replaced = client.put(
        "/api/admin/models", json={"models": ["mock-model", "gpt-4o-mini"]}, headers=admin.headers
    )
    assert replaced.json()["models"] == ["mock-model", "gpt-4o-mini"]
    assert [m["id"] for m in client.get("/api/models", headers=user.headers).json()["data"]] == [
        "mock-model",
        "gpt-4o-mini",
    ]


@pytest.mark.parametrize("body", [{"models": []}, {"models": "gpt"}, {}, {"models": [None]}])
def test_invalid_model_lists_are_422(client: TestClient, body: dict) -> None:
    admin = create_user(is_admin=True)
    assert client.put("/api/admin/models", json=body, headers=admin.headers).status_code == 422
