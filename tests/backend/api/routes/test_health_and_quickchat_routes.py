"""Health, public server options, and the quick chat contract."""

import pytest
from chat_factories import create_user, login_with_cookies
from fastapi.testclient import TestClient

from backend.core.config import settings


def test_health_checks_the_store(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok", "database": "ok"}


def test_health_reports_a_broken_store_as_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.orm import Session

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("store unreadable")

    monkeypatch.setattr(Session, "execute", broken)
    response = client.get("/api/health")
    assert response.status_code == 503 and response.json()["database"] == "error"


def test_public_config(client: TestClient) -> None:
    body = client.get("/api/config").json()
    assert body["allow_registration"] is True and body["mock_llm"] is True
    assert body["default_model"] == settings.default_model


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/auth/login",
        "/api/conversations/{uuid}/messages",
        "/api/admin/users/{user_id}",
        "/chat/history",
        "/chat/message",
    ):
        assert path in paths


def test_quickchat_for_a_logged_in_user(client: TestClient) -> None:
    user = create_user()
    assert client.get("/chat/history", headers=user.headers).json() == []
    reply = client.post("/chat/message", json={"message": "Hello, AI!"}, headers=user.headers)
    assert reply.status_code == 200
    assert reply.json()["status"] == "Success" and "Hello, AI!" in reply.json()["response"]
    client.post("/chat/message", json={"message": "Again"}, headers=user.headers)
    history = client.get("/chat/history", headers=user.headers).json()
    assert [exchange["user"] for exchange in history] == ["Hello, AI!", "Again"]
    assert history[0]["AI"] == reply.json()["response"]
    # It is an ordinary conversation too, listed with the others.
    listing = client.get("/api/conversations", headers=user.headers).json()
    assert [c["kind"] for c in listing["data"]] == ["quickchat"]


def test_quickchat_with_cookie_needs_csrf(client: TestClient) -> None:
    create_user(username="quinn")
    csrf = login_with_cookies(client, "quinn")
    assert client.post("/chat/message", json={"message": "hi"}).status_code == 403
    response = client.post("/chat/message", json={"message": "hi"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200


def test_quickchat_without_login_is_401_by_default(client: TestClient) -> None:
    assert client.get("/chat/history").status_code == 401
    assert client.post("/chat/message", json={"message": "hi"}).status_code == 401


def test_anonymous_quickchat_when_allowed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.main import app

    monkeypatch.setattr(settings, "ALLOW_ANONYMOUS_CHAT", True)
    first = client.post("/chat/message", json={"message": "anonymous hello"})
    assert first.status_code == 200 and "openchat_anon" in first.headers["set-cookie"]
    assert client.get("/chat/history").json()[0]["user"] == "anonymous hello"
    with TestClient(app) as stranger:  # another browser: its own conversation
        assert stranger.get("/chat/history").json() == []


@pytest.mark.parametrize(
    "raw", [b"{}", b'{"message": ""}', b'{"message": 5}', b"not json", b'{"message": "  "}']
)
def test_quickchat_bad_body_is_400_in_the_seed_shape(client: TestClient, raw: bytes) -> None:
    user = create_user()
    response = client.post(
        "/chat/message",
        content=raw,
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["status"] == "error" and response.json()["message"]


def test_quickchat_upstream_failure_is_502_in_the_seed_shape(client: TestClient) -> None:
    user = create_user()
    response = client.post(
        "/chat/message", json={"message": "[mock-error:500]"}, headers=user.headers
    )
    assert response.status_code == 502
    assert response.json()["status"] == "error"
    assert client.get("/chat/history", headers=user.headers).json() == [
        {"user": "[mock-error:500]", "AI": None}
    ]
