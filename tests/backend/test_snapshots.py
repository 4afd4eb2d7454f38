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


def _branched_chat(client: TestClient, user) -> tuple[str, dict]:  # noqa: ANN001
    uuid = create_conversation(client, user)["uuid"]
    first = send_message(client, user, uuid, "first question").json()
    send_message(client, user, uuid, "second question")
    url = f"/api/conversations/{uuid}/regenerate"
    body = {"message_uuid": first["assistant_message"]["uuid"]}
    again = client.post(url, json=body, headers=user.headers).json()
    return uuid, again


def _branch(client: TestClient, user, uuid: str) -> list[tuple[str, int]]:  # noqa: ANN001
    data = client.get(f"/api/conversations/{uuid}/messages", headers=user.headers).json()["data"]
    return [(m["content"], len(m["versions"])) for m in data]


def test_a_snapshot_keeps_every_branch_and_the_one_shown(client: TestClient) -> None:
    alice = create_user()
    uuid, _ = _branched_chat(client, alice)
    shown = _branch(client, alice, uuid)
    assert [versions for _, versions in shown] == [1, 2]
    base = f"/api/conversations/{uuid}/snapshots"
    snapshot = client.post(base, json={"name": "tree"}, headers=alice.headers).json()
    assert snapshot["message_count"] == 5
    copy = client.post(
        f"{base}/{snapshot['uuid']}/restore", json={"mode": "new"}, headers=alice.headers
    ).json()
    assert _branch(client, alice, copy["uuid"]) == shown
    first_answer = client.get(
        f"/api/conversations/{copy['uuid']}/messages", headers=alice.headers
    ).json()["data"][1]["versions"][0]
    client.put(
        f"/api/conversations/{copy['uuid']}/current",
        json={"message_uuid": first_answer},
        headers=alice.headers,
    )
    assert [c for c, _ in _branch(client, alice, copy["uuid"])][2] == "second question"


def test_a_snapshot_from_before_trees_restores_as_one_branch(client: TestClient) -> None:
    import json

    from backend.core.db import SessionLocal
    from backend.models import ConversationSnapshot

    alice = create_user()
    uuid = create_conversation(client, alice)["uuid"]
    send_message(client, alice, uuid, "one")
    send_message(client, alice, uuid, "two")
    base = f"/api/conversations/{uuid}/snapshots"
    snapshot = client.post(base, json={"name": "flat"}, headers=alice.headers).json()
    with SessionLocal() as session:  # the shape snapshots had: no parents, no branch shown
        row = session.query(ConversationSnapshot).filter_by(uuid=snapshot["uuid"]).one()
        state = json.loads(row.data)
        state.pop("current")
        for message in state["messages"]:
            message.pop("parent"), message.pop("uuid")
        row.data = json.dumps(state)
        session.commit()
    copy = client.post(
        f"{base}/{snapshot['uuid']}/restore", json={"mode": "new"}, headers=alice.headers
    ).json()
    assert [c for c, _ in _branch(client, alice, copy["uuid"])][::2] == ["one", "two"]
    assert len(_branch(client, alice, copy["uuid"])) == 4
