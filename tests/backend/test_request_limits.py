"""Bad input never produces a 500: malformed JSON, wrong types, huge bodies, odd encodings."""

import pytest
from chat_factories import create_conversation, create_user
from fastapi.testclient import TestClient

from backend.core.config import settings


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"not json at all",
        b"[]",
        b"null",
        b'"a string"',
        b"\xff\xfe\xfd",
        b'{"username": {"$ne": null}, "password": []}',
        b'{"username": "a", "password": "b", "username": 1}',
        b"{" + b'"a":' * 10 + b"1}",
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_login_bodies_are_4xx(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/api/auth/login", content=raw, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/api/auth/register"),
        ("POST", "/api/conversations"),
        ("PATCH", "/api/conversations/{uuid}"),
        ("POST", "/api/conversations/{uuid}/messages"),
        ("POST", "/api/conversations/{uuid}/regenerate"),
        ("PUT", "/api/settings"),
        ("PUT", "/api/admin/models"),
        ("PATCH", "/api/admin/users/{user_id}"),
    ],
)
@pytest.mark.parametrize("raw", [b"{bad json", b"[1, 2]", b'{"content": {"nested": true}}'])
def test_every_write_route_answers_4xx_to_garbage(
    client: TestClient, method: str, path: str, raw: bytes
) -> None:
    admin = create_user(is_admin=True)
    uuid = create_conversation(client, admin)["uuid"]
    url = path.format(uuid=uuid, user_id=admin.id)
    response = client.request(
        method, url, content=raw, headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, (url, response.status_code, response.text)


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    user = create_user()
    huge = b'{"title": "' + b"x" * settings.MAX_REQUEST_BYTES + b'"}'
    response = client.post(
        "/api/conversations",
        content=huge,
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    """Without Content-Length the limit is enforced while reading."""
    user = create_user()

    def chunks():
        yield b'{"title": "'
        for _ in range(settings.MAX_REQUEST_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = client.post(
        "/api/conversations",
        content=chunks(),
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_lying_content_length_is_refused(client: TestClient) -> None:
    response = client.post(
        "/api/auth/login",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": "not-a-number"},
    )
    assert response.status_code in (400, 413)


def test_huge_string_under_the_body_limit_is_422_not_500(client: TestClient) -> None:
    user = create_user()
    response = client.post(
        "/api/conversations", json={"title": "t" * 500_000}, headers=user.headers
    )
    assert response.status_code == 422


def test_wrong_content_type_is_4xx(client: TestClient) -> None:
    response = client.post(
        "/api/auth/login",
        content=b"username=a&password=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=100000", "offset=-1", "limit=abc", "archived=perhaps"]
)
def test_bad_query_parameters_are_422(client: TestClient, query: str) -> None:
    user = create_user()
    assert client.get(f"/api/conversations?{query}", headers=user.headers).status_code == 422


def test_unexpected_errors_are_a_json_500_without_internals(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.services import conversations

    def explode(**kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(conversations, "list_conversations", explode)
    user = create_user()
    with TestClient(client.app, raise_server_exceptions=False) as quiet:
        response = quiet.get("/api/conversations", headers=user.headers)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}


@pytest.mark.parametrize(
    "error,status",
    [
        ("operational", 503),
        ("pool_timeout", 503),
        ("integrity", 409),
    ],
)
def test_database_failures_are_clear_json_answers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, error: str, status: int
) -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    from backend.services import conversations

    exceptions = {
        "operational": OperationalError("SELECT", {}, Exception("disk I/O error")),
        "pool_timeout": PoolTimeoutError("pool exhausted"),
        "integrity": IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")),
    }

    def fail(**kwargs: object) -> None:
        raise exceptions[error]

    monkeypatch.setattr(conversations, "list_conversations", fail)
    user = create_user()
    response = client.get("/api/conversations", headers=user.headers)
    assert response.status_code == status
    assert "disk I/O" not in response.text and "UNIQUE" not in response.text
