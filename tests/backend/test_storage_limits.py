"""Per-user storage limits (conversations, stored bytes): admin-set, with built-in defaults,
enforced on creating a conversation, sending a message and importing, with a 403 sentence."""

import pytest
from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient

from backend.core.config import settings


def _export(count: int, content: str = "hello") -> dict:
    conversations = [
        {"uuid": f"conv-{i}", "title": f"t{i}", "messages": [{"role": "user", "content": content}]}
        for i in range(count)
    ]
    return {"format": "openchat-export", "version": 1, "conversations": conversations}


def test_conversation_limit_set_by_the_admin_for_one_user(client: TestClient) -> None:
    alice, bob, admin = create_user(), create_user(), create_user(is_admin=True)
    limits = {"max_conversations": 2}
    put = client.put(f"/api/admin/users/{alice.id}/limits", json=limits, headers=admin.headers)
    assert put.status_code == 200 and put.json()["max_conversations"] == 2
    for _ in range(2):
        create_conversation(client, alice)
    refused = client.post("/api/conversations", json={}, headers=alice.headers)
    assert refused.status_code == 403
    assert "Conversation limit reached: 2 of at most 2" in refused.json()["detail"]
    assert client.post("/api/conversations", json={}, headers=bob.headers).status_code == 201
    mine = client.get("/api/usage/limits", headers=alice.headers).json()
    assert mine["max_conversations"] == 2 and mine["conversations"] == 2
    # Deleting frees room at once.
    first = client.get("/api/conversations", headers=alice.headers).json()["data"][0]["uuid"]
    assert client.delete(f"/api/conversations/{first}", headers=alice.headers).status_code < 300
    assert client.post("/api/conversations", json={}, headers=alice.headers).status_code == 201


def test_stored_bytes_limit_refuses_a_message_that_does_not_fit(client: TestClient) -> None:
    alice, admin = create_user(), create_user(is_admin=True)
    client.put("/api/admin/limits/default", json={"max_stored_bytes": 4096}, headers=admin.headers)
    chat = create_conversation(client, alice)
    assert send_message(client, alice, chat["uuid"], "é" * 1000).status_code == 201  # 2000 bytes
    refused = send_message(client, alice, chat["uuid"], "é" * 1500)  # 3000 more bytes
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("Storage limit reached:")
    mine = client.get("/api/usage/limits", headers=alice.headers).json()
    assert mine["max_stored_bytes"] == 4096 and 2000 <= mine["stored_bytes"] < 4096
    assert send_message(client, alice, chat["uuid"], "short").status_code == 201


def test_built_in_defaults_apply_until_an_admin_sets_limits(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "MAX_CONVERSATIONS_PER_USER", 1)
    alice = create_user()
    mine = client.get("/api/usage/limits", headers=alice.headers).json()
    assert mine["max_conversations"] == 1
    assert mine["max_stored_bytes"] == settings.MAX_STORED_BYTES_PER_USER
    create_conversation(client, alice)
    assert client.post("/api/conversations", json={}, headers=alice.headers).status_code == 403


def test_import_is_refused_past_the_limit_and_resumes_after_it_is_raised(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "IMPORT_BATCH_CONVERSATIONS", 10)
    alice, admin = create_user(), create_user(is_admin=True)
    url = f"/api/admin/users/{alice.id}/limits"
    client.put(url, json={"max_conversations": 25}, headers=admin.headers)
    refused = client.post("/api/import", json=_export(40), headers=alice.headers)
    assert refused.status_code == 403
    detail = refused.json()["detail"]
    assert "Conversation limit reached: 20 of at most 25" in detail
    assert "(20 conversations of this file were imported first.)" in detail
    client.put(url, json={"max_conversations": 100}, headers=admin.headers)
    resumed = client.post("/api/import", json=_export(40), headers=alice.headers)
    assert resumed.status_code == 201, resumed.text
    assert resumed.json()["imported"] == 20 and resumed.json()["skipped"] == 20


def test_an_import_is_committed_in_bounded_transactions(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.services import transfer

    monkeypatch.setattr(settings, "IMPORT_BATCH_CONVERSATIONS", 50)
    monkeypatch.setattr(settings, "IMPORT_BATCH_MESSAGES", 10_000)
    sizes: list[int] = []
    original = transfer.import_batch

    def counting(**kwargs: object) -> list[str]:
        sizes.append(len(kwargs["batch"]))  # type: ignore[arg-type]
        return original(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transfer, "import_batch", counting)
    alice = create_user()
    answer = client.post("/api/import", json=_export(120), headers=alice.headers)
    assert answer.status_code == 201 and answer.json()["imported"] == 120
    assert sizes == [50, 50, 20]


def test_questions_far_from_the_limit_reuse_a_recent_count(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.services import storage

    counts: list[int] = []
    original = storage.stored_bytes

    def counting(**kwargs: object) -> int:
        counts.append(1)
        return original(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(storage, "stored_bytes", counting)
    alice, admin = create_user(), create_user(is_admin=True)
    client.put(f"/api/admin/users/{alice.id}/limits", json={"max_stored_bytes": 3000},
               headers=admin.headers)  # fmt: skip
    chat = create_conversation(client, alice)
    for _ in range(3):  # 300 bytes each, far below 90 % of the limit: one count
        assert send_message(client, alice, chat["uuid"], "x" * 300).status_code == 201
    assert len(counts) == 1
    assert send_message(client, alice, chat["uuid"], "y" * 1500).status_code == 201  # 2,400
    assert len(counts) == 1
    # Past 90 % of the limit the question is counted exactly (answers included), so a refusal
    # is never a guess.
    assert send_message(client, alice, chat["uuid"], "z" * 600).status_code == 403
    assert len(counts) == 2
