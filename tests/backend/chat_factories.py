"""Plain-function factories for the backend tests: users, logins, conversations."""

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from backend.core.db import SessionLocal
from backend.core.security import hash_password
from backend.models import User
from backend.services import auth_sessions

DEFAULT_PASSWORD = "correct horse battery"
_sequence = itertools.count(1)


@dataclass
class ChatUser:
    id: int
    username: str
    password: str
    token: str
    headers: dict[str, str] = field(default_factory=dict)


def create_user(
    *,
    username: str | None = None,
    password: str = DEFAULT_PASSWORD,
    is_admin: bool = False,
    is_active: bool = True,
) -> ChatUser:
    """A user straight in the database, with a bearer token: fast, no HTTP."""
    username = username or f"user{next(_sequence)}"
    with SessionLocal() as session:
        user = User(
            username=username,
            email=f"{username}@example.com",
            hashed_password=hash_password(password),
            is_admin=is_admin,
            is_active=is_active,
        )
        session.add(user)
        session.commit()
        token, _ = auth_sessions.create_session(session=session, user=user)
        return ChatUser(
            id=user.id,
            username=username,
            password=password,
            token=token,
            headers={"Authorization": f"Bearer {token}"},
        )


def register(client: TestClient, **overrides: Any) -> Any:
    number = next(_sequence)
    body = {
        "username": f"member{number}",
        "email": f"member{number}@example.com",
        "password": DEFAULT_PASSWORD,
        **overrides,
    }
    return client.post("/api/auth/register", json=body)


def login_with_cookies(client: TestClient, username: str, password: str = DEFAULT_PASSWORD) -> str:
    """Log in through the API; the client keeps the cookies. Returns the CSRF token."""
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


def create_conversation(client: TestClient, user: ChatUser, **body: Any) -> dict[str, Any]:
    response = client.post("/api/conversations", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


def send_message(
    client: TestClient, user: ChatUser, conversation_uuid: str, content: str, **body: Any
) -> Any:
    return client.post(
        f"/api/conversations/{conversation_uuid}/messages",
        json={"content": content, **body},
        headers=user.headers,
    )


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Split a server-sent-events body into (event, data) pairs."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((lines.get("event", "message"), json.loads(lines["data"])))
    return events


def wait_for_privacy_state(
    client: TestClient, headers: dict[str, str], state: str
) -> dict[str, Any]:
    """Poll the user's zero-access state (a conversion runs in the background) until `state`."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = client.get("/api/privacy", headers=headers).json()
        if found["state"] == state:
            return found
        time.sleep(0.05)
    raise AssertionError(f"still {found}")
