"""Sessions: password change, sign out everywhere, idle timeout, admin password reset."""

from datetime import timedelta

from chat_factories import DEFAULT_PASSWORD, create_user, login_with_cookies
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.core.db import SessionLocal
from backend.models import AuthSession, utcnow
from backend.services import auth_sessions

NEW_PASSWORD = "a brand new passphrase"


def second_session(username: str, client: TestClient) -> dict[str, str]:
    response = client.post(
        "/api/auth/login", json={"username": username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def me(client: TestClient, headers: dict[str, str]) -> int:
    return client.get("/api/auth/me", headers=headers).status_code


def test_password_change_needs_the_current_password(client: TestClient) -> None:
    user = create_user(username="tara")
    wrong = client.post(
        "/api/auth/password",
        json={"current_password": "not-it-at-all", "new_password": NEW_PASSWORD},
        headers=user.headers,
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "The current password is not correct."}
    assert me(client, user.headers) == 200  # a wrong guess does not end the session
    short = client.post(
        "/api/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "short"},
        headers=user.headers,
    )
    assert short.status_code == 422


def test_password_change_keeps_this_session_and_ends_the_others(client: TestClient) -> None:
    user = create_user(username="uma")
    other = second_session("uma", client)
    changed = client.post(
        "/api/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=user.headers,
    )
    assert changed.status_code == 200, changed.text
    assert me(client, user.headers) == 200
    assert me(client, other) == 401
    old = client.post("/api/auth/login", json={"username": "uma", "password": DEFAULT_PASSWORD})
    assert old.status_code == 401
    new = client.post("/api/auth/login", json={"username": "uma", "password": NEW_PASSWORD})
    assert new.status_code == 200


def test_password_change_by_cookie_needs_the_csrf_header(client: TestClient) -> None:
    create_user(username="vera")
    csrf = login_with_cookies(client, "vera")
    body = {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post("/api/auth/password", json=body).status_code == 403
    ok = client.post("/api/auth/password", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200
    assert client.get("/api/auth/me").status_code == 200  # the cookie session stays


def test_wrong_current_passwords_are_throttled(client: TestClient) -> None:
    from backend.core.config import settings

    user = create_user(username="wes")
    body = {"current_password": "guess-guess", "new_password": NEW_PASSWORD}
    for _ in range(settings.LOGIN_FREE_FAILURES):
        assert client.post("/api/auth/password", json=body, headers=user.headers).status_code == 400
    refused = client.post("/api/auth/password", json=body, headers=user.headers)
    assert refused.status_code == 429 and refused.headers["Retry-After"]


def test_sign_out_everywhere_ends_every_session(client: TestClient) -> None:
    user = create_user(username="xena")
    other = second_session("xena", client)
    bystander = create_user()
    response = client.post("/api/auth/logout-everywhere", headers=user.headers)
    assert response.status_code == 200
    assert me(client, user.headers) == 401 and me(client, other) == 401
    assert me(client, bystander.headers) == 200


def test_an_idle_session_ends_before_its_lifetime(client: TestClient) -> None:
    user = create_user(username="yuri")
    busy = second_session("yuri", client)
    with SessionLocal() as session:
        for row in session.scalars(select(AuthSession)):
            row.last_seen_at = utcnow() - timedelta(hours=12, seconds=1)
        session.commit()
    assert me(client, user.headers) == 401
    assert me(client, busy) == 401


def test_use_refreshes_last_seen_only_every_few_minutes(client: TestClient) -> None:
    user = create_user(username="zora")
    with SessionLocal() as session:
        row = session.scalars(select(AuthSession)).one()
        first_seen = row.last_seen_at
    assert me(client, user.headers) == 200
    with SessionLocal() as session:
        assert session.scalars(select(AuthSession)).one().last_seen_at == first_seen
        row = session.scalars(select(AuthSession)).one()
        row.last_seen_at = utcnow() - auth_sessions.LAST_SEEN_STEP - timedelta(seconds=1)
        session.commit()
        stale = row.last_seen_at
    assert me(client, user.headers) == 200
    with SessionLocal() as session:
        assert session.scalars(select(AuthSession)).one().last_seen_at > stale + timedelta(
            minutes=4
        )


def test_admin_password_reset_ends_the_users_sessions(client: TestClient) -> None:
    admin, user = create_user(is_admin=True), create_user(username="abe")
    reset = client.patch(
        f"/api/admin/users/{user.id}", json={"password": NEW_PASSWORD}, headers=admin.headers
    )
    assert reset.status_code == 200
    assert NEW_PASSWORD not in reset.text
    assert me(client, user.headers) == 401
    assert me(client, admin.headers) == 200
    login = client.post("/api/auth/login", json={"username": "abe", "password": NEW_PASSWORD})
    assert login.status_code == 200
    short = client.patch(
        f"/api/admin/users/{user.id}", json={"password": "short"}, headers=admin.headers
    )
    assert short.status_code == 422


def test_admins_change_their_own_password_with_the_current_one(client: TestClient) -> None:
    admin = create_user(is_admin=True)
    own = client.patch(
        f"/api/admin/users/{admin.id}", json={"password": NEW_PASSWORD}, headers=admin.headers
    )
    assert own.status_code == 400 and "current password" in own.json()["detail"]
    assert me(client, admin.headers) == 200
