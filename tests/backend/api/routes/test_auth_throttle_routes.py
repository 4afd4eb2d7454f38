"""Sign-in and registration throttling as clients at different addresses see it."""

from collections.abc import Callable, Iterator

import pytest
from chat_factories import create_user, register
from fastapi.testclient import TestClient

from backend.core.config import settings
from backend.main import app

Client = Callable[[str], TestClient]


@pytest.fixture
def client_at() -> Iterator[Client]:
    """Clients calling from the given addresses."""
    opened: list[TestClient] = []

    def make(address: str) -> TestClient:
        client = TestClient(app, client=(address, 50000))
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def login(client: TestClient, name: str, password: str) -> int:
    return client.post("/api/auth/login", json={"username": name, "password": password}).status_code


def test_username_and_email_count_as_one_account(client_at: Client) -> None:
    user = create_user(username="pat")
    http = client_at("198.51.100.1")
    for name in ["pat", "PAT@example.com", "pat", "pat@example.com", "Pat"]:
        assert login(http, name, "wrong-password") == 401
    response = http.post(
        "/api/auth/login", json={"username": "pat@example.com", "password": user.password}
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert "try again in 1 seconds" in response.json()["detail"]


def test_strangers_failures_do_not_lock_the_owner_out_where_they_sign_in(
    client_at: Client,
) -> None:
    user = create_user(username="quinn")
    home = client_at("198.51.100.2")
    assert login(home, "quinn", user.password) == 200
    for n in range(settings.LOGIN_ACCOUNT_FREE_FAILURES):  # guessing from many addresses
        assert login(client_at(f"203.0.113.{n}"), "quinn", "guess-guess") == 401
    assert login(client_at("203.0.113.99"), "quinn", "guess-guess") == 429
    assert login(home, "quinn", user.password) == 200
    # A newcomer address meets the account-wide wait (growing, not a fixed lock).
    assert login(client_at("192.0.2.50"), "quinn", user.password) == 429


def test_one_address_spraying_many_accounts_is_slowed(client_at: Client) -> None:
    sprayer = client_at("203.0.113.200")
    for n in range(settings.LOGIN_ADDRESS_FREE_FAILURES):
        assert login(sprayer, f"victim{n}", "Summer2026!") == 401
    assert login(sprayer, "victim-next", "Summer2026!") == 429
    other = create_user(username="rosa")
    assert login(client_at("198.51.100.3"), "rosa", other.password) == 200


def test_past_the_global_cap_only_known_addresses_get_through(
    client_at: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "LOGIN_GLOBAL_FAILURES_PER_MINUTE", 3)
    user = create_user(username="sam")
    home = client_at("198.51.100.4")
    assert login(home, "sam", user.password) == 200
    for n in range(3):
        assert login(client_at(f"203.0.113.{n}"), f"someone{n}", "nope-nope") == 401
    refused = client_at("192.0.2.9").post(
        "/api/auth/login", json={"username": "sam", "password": user.password}
    )
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    assert login(home, "sam", user.password) == 200


def test_registration_is_limited_per_address(
    client_at: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "REGISTRATIONS_PER_ADDRESS_PER_HOUR", 2)
    busy = client_at("203.0.113.77")
    assert register(busy).status_code == 201
    assert register(busy).status_code == 201
    refused = register(busy)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert "at most 2 an hour" in refused.json()["detail"]
    assert register(client_at("198.51.100.5")).status_code == 201
