"""Liveness, readiness and the cached provider check."""

from collections.abc import Iterator

import pytest
from fake_openai_server import FakeOpenAIServer, free_port, models_listed
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from backend.core.config import settings
from backend.services import health as checks


@pytest.fixture(autouse=True)
def fresh_provider_check() -> Iterator[None]:
    checks.forget_provider_check()
    yield
    checks.forget_provider_check()


def _break_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.orm import Session

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("store unreadable")

    monkeypatch.setattr(Session, "execute", broken)


def test_liveness_answers_without_touching_the_store(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_the_store(monkeypatch)
    response = client.get("/api/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readiness_reports_store_and_migrations(client: TestClient) -> None:
    response = client.get("/api/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["migrations"] == "ok"
    assert body["provider"] in ("mock", "unchecked")


def test_readiness_is_503_when_the_store_fails(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_the_store(monkeypatch)
    response = client.get("/api/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "error" and response.json()["database"] == "error"


def test_readiness_is_503_when_the_database_is_behind_the_code(
    client: TestClient, migrated_engine: Engine
) -> None:
    with migrated_engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        response = client.get("/api/health/ready")
    finally:
        with migrated_engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert response.status_code == 503
    assert response.json()["database"] == "ok" and response.json()["migrations"] == "error"


def test_the_mock_provider_is_reported_as_mock(client: TestClient) -> None:
    body = client.get("/api/health/provider").json()
    assert body["status"] == "mock" and body["checked_at"] is not None


def test_a_reachable_provider_is_asked_once_per_interval(
    client: TestClient, real_provider: FakeOpenAIServer
) -> None:
    models_listed.clear()
    first = client.get("/api/health/provider").json()
    second = client.get("/api/health/provider").json()
    assert first["status"] == "ok" and second == first
    assert models_listed == ["Bearer sk-server-key"]
    assert client.get("/api/health/ready").json()["provider"] == "ok"


def test_an_unreachable_provider_is_reported_but_readiness_holds(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "MOCK_OPENAI", False)
    monkeypatch.setattr(settings, "OPENAI_API_KEY", "sk-secret-never-shown")
    monkeypatch.setattr(settings, "OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    response = client.get("/api/health/provider")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "error" and "could not be reached" in body["detail"]
    assert "sk-secret" not in response.text
    ready = client.get("/api/health/ready")
    assert ready.status_code == 200 and ready.json()["provider"] == "error"
