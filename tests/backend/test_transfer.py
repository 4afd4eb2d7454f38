"""Export and import: our own format and ChatGPT's conversations.json, without duplicates."""

from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient


def _chatgpt_export() -> list[dict]:
    def node(node_id: str, parent: str | None, role: str, text: str, at: float) -> dict:
        message = {
            "id": node_id,
            "author": {"role": role},
            "create_time": at,
            "content": {"content_type": "text", "parts": [text]},
            "metadata": {"model_slug": "gpt-4"} if role == "assistant" else {},
        }
        return {"id": node_id, "message": message, "parent": parent, "children": []}

    mapping = {
        "root": {"id": "root", "message": None, "parent": None, "children": ["s"]},
        "s": node("s", "root", "system", "You are ChatGPT", 1.0),
        "u1": node("u1", "s", "user", "What is a haiku?", 1700000000.0),
        "a1": node("a1", "u1", "assistant", "A short poem.", 1700000001.0),
        "a1b": node("a1b", "u1", "assistant", "An abandoned branch.", 1700000002.0),
    }
    return [
        {
            "title": "Haiku talk",
            "create_time": 1700000000.0,
            "update_time": 1700000001.0,
            "mapping": mapping,
            "current_node": "a1",
            "conversation_id": "c0ffee-1",
        }
    ]


def test_export_then_import_into_another_account_and_reimport(client: TestClient) -> None:
    alice, bob = create_user(), create_user()
    chat = create_conversation(client, alice, title="Recipes")
    send_message(client, alice, chat["uuid"], "how to bake bread")
    exported = client.get("/api/export", headers=alice.headers)
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    body = exported.json()
    assert body["format"] == "openchat-export" and len(body["conversations"]) == 1
    assert [m["role"] for m in body["conversations"][0]["messages"]] == ["user", "assistant"]
    # Re-importing into the same account adds nothing.
    again = client.post("/api/import", json=body, headers=alice.headers).json()
    assert again == {"source": "openchat", "imported": 0, "skipped": 1, "conversations": []}
    # Into another account: a copy with a stable new id, then never twice.
    first = client.post("/api/import", json=body, headers=bob.headers)
    assert first.status_code == 201 and first.json()["imported"] == 1
    copy_uuid = first.json()["conversations"][0]
    assert copy_uuid != chat["uuid"]
    assert client.post("/api/import", json=body, headers=bob.headers).json()["imported"] == 0
    messages = client.get(f"/api/conversations/{copy_uuid}/messages", headers=bob.headers).json()
    assert messages["data"][0]["content"] == "how to bake bread"
    assert messages["data"][1]["response"]["tokens_total"] > 0
    # Deleting then importing restores it under its own id.
    client.delete(f"/api/conversations/{chat['uuid']}", headers=alice.headers)
    back = client.post("/api/import", json=body, headers=alice.headers).json()
    assert back["conversations"] == [chat["uuid"]]
    assert client.get("/api/usage", headers=bob.headers).json()["totals"]["messages_sent"] == 0


def test_chatgpt_import_follows_the_current_branch(client: TestClient) -> None:
    alice = create_user()
    result = client.post("/api/import", json=_chatgpt_export(), headers=alice.headers).json()
    assert result["source"] == "chatgpt" and result["imported"] == 1
    uuid = result["conversations"][0]
    conversation = client.get(f"/api/conversations/{uuid}", headers=alice.headers).json()
    assert conversation["title"] == "Haiku talk"
    messages = client.get(f"/api/conversations/{uuid}/messages", headers=alice.headers).json()[
        "data"
    ]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "What is a haiku?"),
        ("assistant", "A short poem."),
    ]
    assert messages[0]["created_at"].startswith("2023-11-14")
    assert (
        client.post("/api/import", json=_chatgpt_export(), headers=alice.headers).json()["skipped"]
        == 1
    )
    found = client.get("/api/search?q=haiku", headers=alice.headers).json()
    assert found["count"] >= 2


def test_malformed_imports_are_4xx(client: TestClient) -> None:
    alice = create_user()
    assert client.post("/api/import", json={"hello": 1}, headers=alice.headers).status_code == 400
    assert client.post("/api/import", json=[1, 2], headers=alice.headers).status_code == 400
    assert (
        client.post("/api/import", json=[{"mapping": {}}], headers=alice.headers).status_code == 400
    )
    bad = {
        "format": "openchat-export",
        "conversations": [{"uuid": "x", "messages": [{"role": "system"}]}],
    }
    assert client.post("/api/import", json=bad, headers=alice.headers).status_code == 400
    broken = client.post(
        "/api/import",
        content=b"{not json",
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    weird = [{"id": "z", "mapping": {"a": {"message": {"author": "x"}}}, "current_node": "a"}]
    assert client.post("/api/import", json=weird, headers=alice.headers).status_code in (201, 400)
    assert client.get("/api/export").status_code == 401


def _tree_chat(client: TestClient, user) -> str:  # noqa: ANN001
    uuid = create_conversation(client, user, title="Tree")["uuid"]
    first = send_message(client, user, uuid, "first question").json()
    send_message(client, user, uuid, "second question")
    send_message(client, user, uuid, "first, asked again", edit_of=first["user_message"]["uuid"])
    return uuid


def _shown(client: TestClient, user, uuid: str) -> list[tuple[str, int]]:  # noqa: ANN001
    data = client.get(f"/api/conversations/{uuid}/messages", headers=user.headers).json()["data"]
    return [(m["content"], len(m["versions"])) for m in data]


def test_an_export_keeps_the_tree_and_the_branch_shown(client: TestClient) -> None:
    alice, bob = create_user(), create_user()
    uuid = _tree_chat(client, alice)
    body = client.get("/api/export", headers=alice.headers).json()
    (exported,) = body["conversations"]
    assert len(exported["messages"]) == 6 and exported["current_message_uuid"]
    assert [m["parent_uuid"] is None for m in exported["messages"]].count(True) == 2
    assert client.post("/api/import", json=body, headers=bob.headers).json()["imported"] == 1
    (copy,) = client.get("/api/conversations", headers=bob.headers).json()["data"]
    assert _shown(client, bob, copy["uuid"]) == _shown(client, alice, uuid)
    assert _shown(client, bob, copy["uuid"])[0] == ("first, asked again", 2)


def test_a_flat_export_still_imports_as_one_branch(client: TestClient) -> None:
    alice, bob = create_user(), create_user()
    uuid = create_conversation(client, alice, title="Flat")["uuid"]
    send_message(client, alice, uuid, "one")
    send_message(client, alice, uuid, "two")
    body = client.get("/api/export", headers=alice.headers).json()
    for conversation in body["conversations"]:  # the shape exports had before trees
        conversation.pop("current_message_uuid")
        for message in conversation["messages"]:
            message.pop("parent_uuid")
    assert client.post("/api/import", json=body, headers=bob.headers).json()["imported"] == 1
    (copy,) = client.get("/api/conversations", headers=bob.headers).json()["data"]
    shown = _shown(client, bob, copy["uuid"])
    assert [c for c, _ in shown][::2] == ["one", "two"] and len(shown) == 4
