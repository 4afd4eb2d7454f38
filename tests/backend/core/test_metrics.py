"""`/metrics`: off without METRICS_TOKEN, bearer-protected with it, and counting what it says."""

import pytest
from chat_factories import create_user, login_with_cookies
from fastapi.testclient import TestClient

from backend.core.config import settings

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "METRICS_TOKEN", TOKEN)


def _scrape(client: TestClient) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return response.text


def _value(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_metrics_are_off_without_a_token(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404


def test_metrics_want_the_token(client: TestClient, metrics_on: None) -> None:
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "metrics-token" not in wrong.text


def test_requests_answers_tokens_and_the_store_are_counted(
    client: TestClient, metrics_on: None
) -> None:
    before = _scrape(client)
    client.get("/api/health/live")
    user = create_user(username="metered")
    csrf = login_with_cookies(client, user.username)
    answer = client.post(
        "/chat/message", json={"message": "Count me"}, headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200, answer.text
    after = _scrape(client)
    live = 'openchat_http_requests_total{method="GET",route="/api/health/live",status="200"}'
    assert _value(after, live) == _value(before, live) + 1
    assert (
        'route="/api/health/live"' in after
        and "openchat_http_request_duration_seconds_bucket" in after
    )
    assert _value(after, "openchat_answers_total{") == _value(before, "openchat_answers_total{") + 1
    assert _value(after, "openchat_tokens_total{") > _value(before, "openchat_tokens_total{")
    assert _value(after, "openchat_store_commit_seconds_count") > _value(
        before, "openchat_store_commit_seconds_count"
    )
    assert "Count me" not in after and "metered" not in after
    if settings.DATABASE_URL.startswith(("deltadb", "sqlite")):
        assert _value(after, "openchat_store_size_bytes") > 0
