"""Usage analytics: daily aggregates per user and model, own view and the admin view."""

from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient

from backend.services.usage import today


def test_answers_update_the_daily_aggregates(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice)
    first = send_message(client, alice, chat["uuid"], "hello there").json()
    second = send_message(client, alice, chat["uuid"], "and again", model="gpt-4o").json()
    report = client.get("/api/usage", headers=alice.headers).json()
    rows = {row["model"]: row for row in report["data"]}
    assert rows[""]["conversations_created"] == 1
    mini = rows["mock"]  # the built-in mock answers under its own name
    answers = [m["assistant_message"]["response"] for m in (first, second)]
    assert mini["day"] == today()
    assert mini["prompt_tokens"] == sum(a["tokens_prompt"] for a in answers)
    assert mini["completion_tokens"] == sum(a["tokens_completion"] for a in answers)
    assert mini["avg_completion_ms"] is not None
    assert mini["messages_sent"] == 2
    assert report["totals"]["messages_sent"] == 2 and report["totals"]["conversations_created"] == 1
    assert report["daily"][0]["day"] == today() and report["by_user"] is None
    assert "user_id" not in report["data"][0] or report["data"][0]["user_id"] is None


def test_streamed_answers_and_regenerations_are_counted(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice, default_model="gpt-4o")
    headers = {**alice.headers, "Accept": "text/event-stream"}
    client.post(
        f"/api/conversations/{chat['uuid']}/messages", json={"content": "hi"}, headers=headers
    )
    client.post(f"/api/conversations/{chat['uuid']}/regenerate", json={}, headers=alice.headers)
    rows = client.get("/api/usage", headers=alice.headers).json()["data"]
    # The conversation was created for gpt-4o; its answers came from the mock.
    assert sorted((r["model"], r["conversations_created"], r["messages_sent"]) for r in rows) == [
        ("gpt-4o", 1, 0),
        ("mock", 0, 2),
    ]


def test_users_see_only_their_own_usage_and_admins_see_everyone(client: TestClient) -> None:
    alice, bob, admin = create_user(), create_user(), create_user(is_admin=True)
    for user in (alice, bob):
        send_message(client, user, create_conversation(client, user)["uuid"], "question")
    mine = client.get("/api/usage", headers=alice.headers).json()
    assert mine["totals"]["messages_sent"] == 1
    assert client.get("/api/admin/usage", headers=alice.headers).status_code == 403
    everyone = client.get("/api/admin/usage", headers=admin.headers).json()
    assert everyone["totals"]["messages_sent"] == 2
    assert {u["username"] for u in everyone["by_user"]} == {alice.username, bob.username}
    assert {row["user_id"] for row in everyone["data"]} == {alice.id, bob.id}
    only_bob = client.get(f"/api/admin/usage?user_id={bob.id}", headers=admin.headers).json()
    assert only_bob["totals"]["messages_sent"] == 1


def test_usage_ranges_are_validated(client: TestClient) -> None:
    alice = create_user()
    assert client.get("/api/usage").status_code == 401
    bad = client.get("/api/usage?start=2026-13-01", headers=alice.headers)
    assert bad.status_code == 422
    backwards = client.get("/api/usage?start=2026-02-01&end=2026-01-01", headers=alice.headers)
    assert backwards.status_code == 400
    too_long = client.get("/api/usage?start=2020-01-01&end=2026-01-01", headers=alice.headers)
    assert too_long.status_code == 400
    empty = client.get("/api/usage?start=2020-01-01&end=2020-01-31", headers=alice.headers).json()
    assert empty["data"] == [] and empty["totals"]["messages_sent"] == 0
