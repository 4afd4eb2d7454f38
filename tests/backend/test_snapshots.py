"""Snapshots: take, list, read, restore in place or as a new conversation; owners only."""

from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient


def _contents(client: TestClient, user, uuid: str) -> list[str]:  # noqa: ANN001
    data = client.get(f"/api/conversations/{uuid}/messages", headers=user.headers).json()["data"]
    return [m["content"] for m in data]


def test_take_list_restore_in_place_and_as_new(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice)
    send_message(client, alice, chat["uuid"], "first question")
    base = f"/api/conversations/{chat['uuid']}/snapshots"
    snap = client.post(base, json={"name": "before the detour"}, headers=alice.headers)
    assert snap.status_code == 201
    snapshot = snap.json()
    assert snapshot["message_count"] == 2 and snapshot["conversation_uuid"] == chat["uuid"]
    before = _contents(client, alice, chat["uuid"])
    send_message(client, alice, chat["uuid"], "a detour")
    assert len(_contents(client, alice, chat["uuid"])) == 4
    listed = client.get(base, headers=alice.headers).json()
    assert listed["count"] == 1 and listed["data"][0]["name"] == "before the detour"
    detail = client.get(f"{base}/{snapshot['uuid']}", headers=alice.headers).json()
    assert [m["content"] for m in detail["messages"]] == before
    assert detail["messages"][1]["role"] == "assistant"

    copy = client.post(
        f"{base}/{snapshot['uuid']}/restore", json={"mode": "new"}, headers=alice.headers
    )
    assert copy.status_code == 200 and copy.json()["uuid"] != chat["uuid"]
    assert "(before the detour)" in copy.json()["title"]
    assert _contents(client, alice, copy.json()["uuid"]) == before
    restored = client.post(f"{base}/{snapshot['uuid']}/restore", headers=alice.headers)
    assert restored.status_code == 200 and restored.json()["uuid"] == chat["uuid"]
    assert _contents(client, alice, chat["uuid"]) == before
    answer = client.get(f"/api/conversations/{chat['uuid']}/messages", headers=alice.headers).json()
    assert answer["data"][1]["response"]["tokens_total"] > 0  # metadata survives
    # The conversation goes on normally after a restore.
    assert send_message(client, alice, chat["uuid"], "after restore").status_code == 201
    # Restores are not new usage.
    usage = client.get("/api/usage", headers=alice.headers).json()["totals"]
    assert usage["messages_sent"] == 3 and usage["conversations_created"] == 1


def test_snapshot_permissions_and_input(client: TestClient) -> None:
    alice, bob = create_user(), create_user()
    chat = create_conversation(client, alice)
    base = f"/api/conversations/{chat['uuid']}/snapshots"
    snapshot = client.post(base, json={"name": "s"}, headers=alice.headers).json()
    assert client.post(base, json={"name": "x"}, headers=bob.headers).status_code == 404
    assert client.get(base, headers=bob.headers).status_code == 404
    assert client.get(f"{base}/{snapshot['uuid']}", headers=bob.headers).status_code == 404
    assert client.post(f"{base}/{snapshot['uuid']}/restore", headers=bob.headers).status_code == 404
    assert client.post(base, json={"name": ""}, headers=alice.headers).status_code == 422
    assert client.post(base, json={}, headers=alice.headers).status_code == 422
    bad_mode = client.post(
        f"{base}/{snapshot['uuid']}/restore", json={"mode": "x"}, headers=alice.headers
    )
    assert bad_mode.status_code == 422
    other = create_conversation(client, alice)
    wrong = f"/api/conversations/{other['uuid']}/snapshots/{snapshot['uuid']}"
    assert client.get(wrong, headers=alice.headers).status_code == 404
    assert client.delete(f"{base}/{snapshot['uuid']}", headers=alice.headers).status_code == 200
    assert client.get(base, headers=alice.headers).json()["count"] == 0
