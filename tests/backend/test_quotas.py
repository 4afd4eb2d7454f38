"""Daily token budgets and message rates: admin settings, 429s, and counting across processes."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient

from backend.core.db import REPO_ROOT


def test_limits_are_admin_only_and_validated(client: TestClient) -> None:
    alice, admin = create_user(), create_user(is_admin=True)
    assert client.get("/api/admin/limits/default", headers=alice.headers).status_code == 403
    body = {"daily_token_budget": 1000}
    assert (
        client.put("/api/admin/limits/default", json=body, headers=alice.headers).status_code == 403
    )
    assert (
        client.put(
            "/api/admin/limits/default", json={"messages_per_day": -1}, headers=admin.headers
        ).status_code
        == 422
    )
    assert (
        client.put("/api/admin/limits/default", json={"nope": 1}, headers=admin.headers).status_code
        == 422
    )
    assert (
        client.put("/api/admin/users/99999/limits", json={}, headers=admin.headers).status_code
        == 404
    )
    stored = client.put("/api/admin/limits/default", json=body, headers=admin.headers).json()
    assert stored == {
        "user_id": None,
        "daily_token_budget": 1000,
        "messages_per_minute": None,
        "messages_per_day": None,
        "max_conversations": None,
        "max_stored_bytes": None,
    }
    assert client.get("/api/admin/limits/default", headers=admin.headers).json() == stored


def test_message_rate_gives_429_with_reset_time(client: TestClient) -> None:
    alice, admin = create_user(), create_user(is_admin=True)
    limits = {"messages_per_minute": 2}
    assert (
        client.put(
            f"/api/admin/users/{alice.id}/limits", json=limits, headers=admin.headers
        ).status_code
        == 200
    )
    chat = create_conversation(client, alice)
    assert send_message(client, alice, chat["uuid"], "one").status_code == 201
    assert send_message(client, alice, chat["uuid"], "two").status_code == 201
    refused = send_message(client, alice, chat["uuid"], "three")
    assert refused.status_code == 429
    assert "at most 2 messages per minute" in refused.json()["detail"]
    assert "resets at" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The refused question is neither stored nor counted.
    messages = client.get(
        f"/api/conversations/{chat['uuid']}/messages", headers=alice.headers
    ).json()
    assert messages["count"] == 4
    mine = client.get("/api/usage/limits", headers=alice.headers).json()
    assert mine["messages_per_minute"] == 2 and mine["messages_this_minute"] == 2
    # Other users are not affected; clearing the user's limits restores the (empty) default.
    bob = create_user()
    assert (
        send_message(client, bob, create_conversation(client, bob)["uuid"], "x").status_code == 201
    )
    client.delete(f"/api/admin/users/{alice.id}/limits", headers=admin.headers)
    assert send_message(client, alice, chat["uuid"], "four").status_code == 201


def test_daily_token_budget_and_default_fallback(client: TestClient) -> None:
    alice, bob, admin = create_user(), create_user(), create_user(is_admin=True)
    client.put("/api/admin/limits/default", json={"daily_token_budget": 10}, headers=admin.headers)
    client.put(
        f"/api/admin/users/{bob.id}/limits",
        json={"daily_token_budget": 100000},
        headers=admin.headers,
    )
    chat = create_conversation(client, alice)
    assert send_message(client, alice, chat["uuid"], "a question long enough").status_code == 201
    refused = send_message(client, alice, chat["uuid"], "another")
    assert refused.status_code == 429 and "Daily token budget reached" in refused.json()["detail"]
    assert "00:00:00Z" in refused.json()["detail"] and int(refused.headers["Retry-After"]) > 0
    regenerate = client.post(
        f"/api/conversations/{chat['uuid']}/regenerate", json={}, headers=alice.headers
    )
    assert regenerate.status_code == 429
    streamed = client.post(
        f"/api/conversations/{chat['uuid']}/messages",
        json={"content": "x"},
        headers={**alice.headers, "Accept": "text/event-stream"},
    )
    assert streamed.status_code == 429  # refused before the stream starts
    bob_chat = create_conversation(client, bob)
    for _ in range(2):
        assert (
            send_message(client, bob, bob_chat["uuid"], "bob has his own budget").status_code == 201
        )
    mine = client.get("/api/usage/limits", headers=alice.headers).json()
    assert mine["daily_token_budget"] == 10 and mine["tokens_today"] > 10


WORKER = textwrap.dedent(
    """
    import sys
    from backend.core.db import SessionLocal
    from backend.services import quotas
    from backend.services.errors import TooManyRequests
    allowed = 0
    for _ in range(int(sys.argv[2])):
        with SessionLocal() as session:
            try:
                quotas.enforce(session=session, user_id=int(sys.argv[1]))
                session.commit()
                allowed += 1
            except TooManyRequests:
                pass
    print(allowed)
    """
)


def test_counts_are_shared_by_several_processes(client: TestClient, tmp_path: Path) -> None:
    alice, admin = create_user(), create_user(is_admin=True)
    limits = {"messages_per_day": 7}
    client.put(f"/api/admin/users/{alice.id}/limits", json=limits, headers=admin.headers)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(alice.id), "6"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    allowed = [
        int(worker.communicate(timeout=120)[0].strip().splitlines()[-1]) for worker in workers
    ]
    assert sum(allowed) == 7, allowed
    assert client.get("/api/usage/limits", headers=alice.headers).json()["messages_today"] == 7


def test_quick_chat_is_limited_too(client: TestClient) -> None:
    alice, admin = create_user(), create_user(is_admin=True)
    client.put(
        f"/api/admin/users/{alice.id}/limits", json={"messages_per_day": 1}, headers=admin.headers
    )
    first = client.post("/chat/message", json={"message": "hi"}, headers=alice.headers)
    assert first.status_code == 200
    second = client.post("/chat/message", json={"message": "again"}, headers=alice.headers)
    assert second.status_code == 429 and "Retry-After" in second.headers
