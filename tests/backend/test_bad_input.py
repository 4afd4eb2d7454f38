"""Input no route can use is a 4xx with a sentence, never a 500: integers past 64 bits, lone
surrogates in JSON strings (signed in or not), NUL in query strings and paths."""

import json
import logging
from typing import Any

import pytest
from chat_factories import create_conversation, create_user
from fastapi.testclient import TestClient

from backend.core.db import engine, make_engine

HUGE = 10**20


def _assert_refused(response: object, status: int = 422) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    detail = response.json()["detail"]  # type: ignore[attr-defined]
    assert detail and all(item["msg"] for item in detail), detail


def _send(
    client: TestClient, method: str, path: str, body: Any, headers: dict[str, str] | None = None
) -> Any:
    """Send `body` as JSON with \\u escapes, as a browser or another client would write it."""
    raw = json.dumps(body).encode()
    headers = {**(headers or {}), "Content-Type": "application/json"}
    return client.request(method, path, content=raw, headers=headers)


@pytest.fixture
def admin_and_chat(client: TestClient) -> tuple[dict[str, str], str]:
    admin = create_user(is_admin=True)
    uuid = create_conversation(client, admin)["uuid"]
    return admin.headers, uuid


@pytest.mark.parametrize(
    "path",
    [
        "/api/conversations?offset={huge}",
        "/api/conversations/{uuid}/messages?offset={huge}",
        "/api/conversations/{uuid}/tool-executions?offset={huge}",
        "/api/admin/users?offset={huge}",
        "/api/admin/usage?user_id={huge}",
        "/api/admin/users/{huge}/limits",
        "/api/conversations?offset=-1",
        "/api/admin/users/0/limits",
    ],
)
def test_integers_outside_64_bits_are_422(
    client: TestClient, admin_and_chat: tuple[dict[str, str], str], path: str
) -> None:
    headers, uuid = admin_and_chat
    _assert_refused(client.get(path.format(huge=HUGE, uuid=uuid), headers=headers))


def test_a_huge_user_id_in_a_write_path_is_422(
    client: TestClient, admin_and_chat: tuple[dict[str, str], str]
) -> None:
    headers, _ = admin_and_chat
    response = client.patch(f"/api/admin/users/{HUGE}", json={"is_active": False}, headers=headers)
    _assert_refused(response)
    assert (
        client.get("/api/admin/users/9223372036854775807/limits", headers=headers).status_code
        == 404
    )


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/auth/login", {"username": "\ud800", "password": "x"}),
        ("/api/auth/login", {"username": "someone", "password": "pass\udfffword"}),
        ("/api/auth/register", {"username": "abc", "email": "a@b.cd", "password": "\ud800" * 12}),
        ("/api/auth/register", {"username": "abc", "email": "\udc00@b.cd", "password": "x" * 12}),
    ],
)
def test_lone_surrogates_are_422_without_signing_in(
    client: TestClient, path: str, body: dict
) -> None:
    _assert_refused(_send(client, "POST", path, body))


def test_lone_surrogates_are_422_in_every_signed_in_body(
    client: TestClient, admin_and_chat: tuple[dict[str, str], str]
) -> None:
    headers, uuid = admin_and_chat
    for method, path, body in [
        ("POST", "/api/conversations", {"title": "a\ud800b"}),
        ("PATCH", f"/api/conversations/{uuid}", {"title": "\udbff"}),
        ("POST", f"/api/conversations/{uuid}/messages", {"content": "hi \ud83d"}),
        ("PUT", "/api/settings", {"default_model": "\ud800"}),
        ("POST", "/api/import", {"conversations": [{"uuid": "u1", "title": "\ud800"}]}),
        ("POST", "/api/import", [{"title": "x", "mapping": {"\ud800": {}}}]),
    ]:
        _assert_refused(_send(client, method, path, body, headers))


def test_escaped_surrogate_pairs_and_escaped_backslashes_still_pass(client: TestClient) -> None:
    user = create_user()
    raw = b'{"title": "\\ud83d\\ude00 and \\\\ud800"}'  # an emoji, and the text "\ud800"
    response = client.post(
        "/api/conversations",
        content=raw,
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "\U0001f600 and \\ud800"


def test_quick_chat_keeps_its_own_error_shape(client: TestClient) -> None:
    response = _send(client, "POST", "/chat/", {"message": "\ud800"})
    assert response.status_code == 400 and response.json()["status"] == "error"


@pytest.mark.parametrize(
    "path",
    [
        "/api/conversations?q=%00",
        "/api/conversations?q=a%00b",
        "/api/search?q=%00",
        "/api/conversations/%00/messages",
    ],
)
def test_nul_in_query_strings_and_paths_is_refused(client: TestClient, path: str) -> None:
    user = create_user()
    _assert_refused(client.get(path, headers=user.headers))


def test_a_literal_percent_zero_zero_is_not_nul(client: TestClient) -> None:
    user = create_user()
    response = client.get("/api/conversations?q=%2500", headers=user.headers)
    assert response.status_code == 200


def test_failed_statements_never_log_their_parameters(caplog: pytest.LogCaptureFixture) -> None:
    assert engine.hide_parameters
    other = make_engine("sqlite://")
    assert other.hide_parameters
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with other.begin() as connection:
        connection.execute(text("CREATE TABLE t (v TEXT UNIQUE)"))
        connection.execute(text("INSERT INTO t VALUES ('secret value')"))
    with caplog.at_level(logging.DEBUG), pytest.raises(IntegrityError) as failure:
        with other.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (:v)"), {"v": "secret value"})
    assert "secret value" not in str(failure.value)
    assert "secret value" not in caplog.text
