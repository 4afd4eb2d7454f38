"""Registration, login (cookie + bearer), logout, CSRF, throttling, inactive accounts."""

import pytest
from chat_factories import DEFAULT_PASSWORD, create_user, login_with_cookies, register
from fastapi.testclient import TestClient

from backend.core.config import settings


def test_register_returns_the_user_without_secrets(client: TestClient) -> None:
    response = register(client, username="Alice", email="Alice@Example.com", full_name="Alice A")
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "alice"  # usernames are case-insensitive, stored lower-case
    assert body["email"] == "alice@example.com"
    assert body["full_name"] == "Alice A"
    assert "password" not in response.text and "hashed" not in response.text


def test_first_registered_user_becomes_admin_then_nobody_else(client: TestClient) -> None:
    assert register(client).json()["is_admin"] is True
    assert register(client).json()["is_admin"] is False


def test_configured_admin_means_first_user_is_not_admin(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "ADMIN_USERNAME", "root")
    assert register(client).json()["is_admin"] is False


def test_configured_admin_is_created_on_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.main import app

    monkeypatch.setattr(settings, "ADMIN_USERNAME", "Root")
    monkeypatch.setattr(settings, "ADMIN_PASSWORD", "root-password")
    with TestClient(app) as client:
        login = client.post(
            "/api/auth/login", json={"username": "root", "password": "root-password"}
        )
        assert login.status_code == 200
        assert login.json()["user"]["is_admin"] is True
    with TestClient(app):  # a second start leaves the existing admin alone
        pass


def test_password_shorter_than_eight_is_refused(client: TestClient) -> None:
    response = register(client, password="short7!")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]
    assert "short7!" not in response.text  # inputs are not echoed back


@pytest.mark.parametrize(
    "field,value",
    [
        ("username", "a"),
        ("username", "has space"),
        ("email", "not-an-email"),
        ("username", "x" * 65),
    ],
)
def test_invalid_registration_fields_are_422(client: TestClient, field: str, value: str) -> None:
    assert register(client, **{field: value}).status_code == 422


def test_duplicate_username_or_email_gets_one_answer_that_does_not_say_which(
    client: TestClient,
) -> None:
    register(client, username="bob", email="bob@example.com")
    taken_name = register(client, username="BOB", email="other@example.com")
    taken_email = register(client, username="robert", email="bob@example.com")
    assert taken_name.status_code == taken_email.status_code == 409
    assert taken_name.json() == taken_email.json()


def test_registration_can_be_closed(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "ALLOW_REGISTRATION", False)
    assert register(client).status_code == 403


def test_login_sets_httponly_session_cookie_and_readable_csrf_cookie(client: TestClient) -> None:
    user = create_user(username="carol")
    response = client.post("/api/auth/login", json={"username": "carol", "password": user.password})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"]
    assert body["user"]["username"] == "carol"
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith(settings.SESSION_COOKIE_NAME + "="))
    csrf_cookie = next(c for c in cookies if c.startswith(settings.CSRF_COOKIE_NAME + "="))
    assert "HttpOnly" in session_cookie and "samesite=lax" in session_cookie.lower()
    assert "HttpOnly" not in csrf_cookie
    assert body["csrf_token"] in csrf_cookie


def test_login_by_email_and_case_insensitive(client: TestClient) -> None:
    user = create_user(username="dave")
    for login in ("DAVE", "dave@example.com", "Dave@Example.com"):
        response = client.post(
            "/api/auth/login", json={"username": login, "password": user.password}
        )
        assert response.status_code == 200, login


def test_wrong_password_and_unknown_user_get_the_same_answer(client: TestClient) -> None:
    create_user(username="erin")
    wrong = client.post("/api/auth/login", json={"username": "erin", "password": "nope-nope"})
    unknown = client.post("/api/auth/login", json={"username": "ghost", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Incorrect username or password"}


def test_login_is_throttled_after_repeated_failures_even_with_the_right_password(
    client: TestClient,
) -> None:
    user = create_user(username="frank")
    for _ in range(settings.LOGIN_FREE_FAILURES):
        bad = client.post("/api/auth/login", json={"username": "frank", "password": "wrong-pass"})
        assert bad.status_code == 401
    locked = client.post("/api/auth/login", json={"username": "frank", "password": user.password})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    # Another account is unaffected.
    other = create_user(username="grace")
    ok = client.post("/api/auth/login", json={"username": "grace", "password": other.password})
    assert ok.status_code == 200


def test_throttling_applies_to_unknown_accounts_too(client: TestClient) -> None:
    """Otherwise the 429 itself would reveal which accounts exist."""
    for _ in range(settings.LOGIN_FREE_FAILURES):
        client.post("/api/auth/login", json={"username": "nobody", "password": "wrong-pass"})
    response = client.post("/api/auth/login", json={"username": "nobody", "password": "x" * 8})
    assert response.status_code == 429


def test_inactive_user_cannot_log_in(client: TestClient) -> None:
    user = create_user(username="henry", is_active=False)
    response = client.post("/api/auth/login", json={"username": "henry", "password": user.password})
    assert response.status_code == 403


def test_me_with_bearer_token(client: TestClient) -> None:
    user = create_user(username="ivy")
    response = client.get("/api/auth/me", headers=user.headers)
    assert response.status_code == 200 and response.json()["username"] == "ivy"


def test_me_with_cookie(client: TestClient) -> None:
    create_user(username="jack")
    login_with_cookies(client, "jack")
    assert client.get("/api/auth/me").json()["username"] == "jack"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-real-token"}])
def test_me_without_valid_credentials_is_401(client: TestClient, headers: dict) -> None:
    assert client.get("/api/auth/me", headers=headers).status_code == 401


def test_cookie_authenticated_write_needs_the_csrf_header(client: TestClient) -> None:
    create_user(username="kate")
    csrf = login_with_cookies(client, "kate")
    assert client.post("/api/conversations", json={}).status_code == 403
    wrong = client.post("/api/conversations", json={}, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    ok = client.post("/api/conversations", json={}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert client.get("/api/conversations").status_code == 200  # reads need no token


def test_csrf_token_from_another_session_is_refused(client: TestClient) -> None:
    create_user(username="liam")
    first = login_with_cookies(client, "liam")
    login_with_cookies(client, "liam")  # a new session replaces the cookies
    client.cookies.set(settings.CSRF_COOKIE_NAME, first)
    assert (
        client.post("/api/conversations", json={}, headers={"X-CSRF-Token": first}).status_code
        == 403
    )


def test_bearer_requests_need_no_csrf_header(client: TestClient) -> None:
    user = create_user()
    assert client.post("/api/conversations", json={}, headers=user.headers).status_code == 201


def test_logout_revokes_the_session_server_side(client: TestClient) -> None:
    user = create_user(username="mia")
    csrf = login_with_cookies(client, "mia")
    session_cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/api/auth/me").status_code == 401
    # The old token stays dead even if someone kept a copy of the cookie.
    replay = client.get("/api/auth/me", headers={"Authorization": f"Bearer {session_cookie}"})
    assert replay.status_code == 401
    # Other sessions of the same user are not affected.
    assert client.get("/api/auth/me", headers=user.headers).status_code == 200


def test_logout_with_bearer_token(client: TestClient) -> None:
    user = create_user()
    assert client.post("/api/auth/logout", headers=user.headers).status_code == 200
    assert client.get("/api/auth/me", headers=user.headers).status_code == 401


def test_logout_by_cookie_without_csrf_is_refused(client: TestClient) -> None:
    create_user(username="noah")
    login_with_cookies(client, "noah")
    assert client.post("/api/auth/logout").status_code == 403
    assert client.get("/api/auth/me").status_code == 200


def test_expired_session_is_refused(client: TestClient) -> None:
    from datetime import timedelta

    from backend.core.db import SessionLocal
    from backend.models import AuthSession, utcnow

    user = create_user()
    with SessionLocal() as session:
        for row in session.query(AuthSession).all():
            row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    assert client.get("/api/auth/me", headers=user.headers).status_code == 401


def test_login_password_hash_is_argon2id(client: TestClient) -> None:
    from backend.core.db import SessionLocal
    from backend.models import User

    register(client, username="olga", password=DEFAULT_PASSWORD)
    with SessionLocal() as session:
        stored = session.query(User).filter_by(username="olga").one().hashed_password
    assert stored.startswith("$argon2id$")
