"""Token accounting does not trust the provider: counts clamped per answer, only answers the
server paid for charged to its budget, aggregates that cannot overflow."""

import pytest
from chat_factories import create_conversation, create_user, send_message
from fake_openai_server import FakeOpenAIServer
from fastapi.testclient import TestClient

from backend.core.config import settings
from backend.core.db import SessionLocal
from backend.models import UsageDaily
from backend.services.usage import MAX_COUNTER, today

pytestmark = pytest.mark.usefixtures("user_connections")


def own_provider(client: TestClient, user, server: FakeOpenAIServer) -> None:  # noqa: ANN001
    saved = client.put(
        "/api/settings",
        json={"openai_base_url": server.base_url, "openai_api_key": "sk-own-1234567890"},
        headers=user.headers,
    )
    assert saved.status_code == 200, saved.text


@pytest.mark.parametrize(
    ("reported", "stored"),
    [
        ((-1_000_000, -5), (0, 0)),
        ((2**62, 3), (10_000_000, 3)),
        ((2**70, 2**64), (10_000_000, 10_000_000)),
    ],
)
def test_reported_counts_are_clamped_per_answer(
    client: TestClient,
    fake_openai: FakeOpenAIServer,
    reported: tuple[int, int],
    stored: tuple[int, int],
) -> None:
    alice, admin = create_user(), create_user(is_admin=True)
    own_provider(client, alice, fake_openai)
    uuid = create_conversation(client, alice)["uuid"]
    answer = send_message(client, alice, uuid, f"USAGE {reported[0]} {reported[1]}")
    assert answer.status_code == 201, answer.text
    response = answer.json()["assistant_message"]["response"]
    assert (response["tokens_prompt"], response["tokens_completion"]) == stored
    report = client.get("/api/admin/usage", headers=admin.headers)
    assert report.status_code == 200, report.text
    totals = report.json()["totals"]
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == stored


def test_answers_from_a_users_own_key_are_not_charged_to_the_server_budget(
    client: TestClient, fake_openai: FakeOpenAIServer
) -> None:
    alice, admin = create_user(), create_user(is_admin=True)
    client.put("/api/admin/limits/default", json={"daily_token_budget": 20}, headers=admin.headers)
    own_provider(client, alice, fake_openai)
    uuid = create_conversation(client, alice)["uuid"]
    for _ in range(3):  # 14 tokens each, on her own key
        assert send_message(client, alice, uuid, "on my own key").status_code == 201
    limits = client.get("/api/usage/limits", headers=alice.headers).json()
    assert limits["tokens_today"] == 0
    recorded = client.get("/api/usage", headers=alice.headers).json()["totals"]
    assert recorded["prompt_tokens"] == 33 and recorded["messages_sent"] == 3
    # Back on the server's connection (the mock), the budget applies.
    client.put(
        "/api/settings",
        json={"openai_base_url": None, "openai_api_key": None},
        headers=alice.headers,
    )
    assert (
        send_message(client, alice, uuid, "a question long enough for the budget").status_code
        == 201
    )
    refused = send_message(client, alice, uuid, "and another")
    assert refused.status_code == 429, refused.text


def test_a_negative_count_cannot_lower_the_budget(
    client: TestClient, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even where a provider that lies is the server's own."""
    monkeypatch.setattr(settings, "MOCK_OPENAI", False)
    monkeypatch.setattr(settings, "OPENAI_API_KEY", "sk-server-key")
    monkeypatch.setattr(settings, "OPENAI_BASE_URL", fake_openai.base_url)
    alice, admin = create_user(), create_user(is_admin=True)
    client.put("/api/admin/limits/default", json={"daily_token_budget": 20}, headers=admin.headers)
    uuid = create_conversation(client, alice)["uuid"]
    assert send_message(client, alice, uuid, "USAGE -1000000 0").status_code == 201
    assert send_message(client, alice, uuid, "USAGE 15 5").status_code == 201
    assert send_message(client, alice, uuid, "over the budget now").status_code == 429


def _store_usage(user_id: int, *, day: str, prompt: int, completion: int) -> None:
    with SessionLocal() as session:
        session.add(
            UsageDaily(
                user_id=user_id,
                day=day,
                model="m",
                messages_sent=1,
                prompt_tokens=prompt,
                completion_tokens=completion,
                completion_ms_total=prompt,
                conversations_created=0,
            )
        )
        session.commit()


def test_reports_survive_stored_values_beyond_any_range(client: TestClient) -> None:
    """Rows stored before counts were clamped: the reports and the next answer still work."""
    alice, admin = create_user(), create_user(is_admin=True)
    _store_usage(alice.id, day="2026-01-01", prompt=2**62, completion=2**62)
    _store_usage(alice.id, day=today(), prompt=2**62, completion=2**62)
    for path in ("/api/admin/usage?start=2026-01-01&end=" + today(), "/api/admin/usage"):
        report = client.get(path, headers=admin.headers)
        assert report.status_code == 200, report.text
    assert client.get("/api/usage/limits", headers=alice.headers).status_code == 200
    uuid = create_conversation(client, alice)["uuid"]
    assert send_message(client, alice, uuid, "still works", model="m").status_code in (201, 403)


def test_daily_counters_never_overflow(client: TestClient) -> None:
    """Near the top of a 32-bit INTEGER: adding more neither fails nor reads beyond it."""
    alice = create_user()
    _store_usage(alice.id, day=today(), prompt=MAX_COUNTER - 5, completion=0)
    with SessionLocal() as session:
        from backend.services.usage import add_usage

        add_usage(connection=session.connection(), user_id=alice.id, model="m", prompt_tokens=100)
        session.commit()
    totals = client.get("/api/usage", headers=alice.headers).json()["totals"]
    assert totals["prompt_tokens"] == MAX_COUNTER
