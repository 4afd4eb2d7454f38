"""Folders of chats: create, rename, delete, move chats in and out, filter the list."""

from chat_factories import create_conversation, create_user
from fastapi.testclient import TestClient


def _titles(client: TestClient, headers: dict[str, str], **query: str) -> list[str]:
    r = client.get("/api/conversations", params=query, headers=headers)
    assert r.status_code == 200, r.text
    return [c["title"] for c in r.json()["data"]]


def test_folders_hold_chats_and_filter_the_list(client: TestClient) -> None:
    alice = create_user()
    work = client.post("/api/folders", json={"name": "  Work  "}, headers=alice.headers)
    assert work.status_code == 201, work.text
    assert work.json()["name"] == "Work" and work.json()["chats"] == 0
    home = client.post("/api/folders", json={"name": "Home"}, headers=alice.headers).json()
    plan = create_conversation(client, alice, title="Quarterly plan")
    create_conversation(client, alice, title="Groceries")
    before = _titles(client, alice.headers)
    moved = client.put(
        f"/api/conversations/{plan['uuid']}/folder",
        json={"folder": work.json()["uuid"]},
        headers=alice.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["updated_at"] == plan["updated_at"]  # moving keeps a chat's place
    assert _titles(client, alice.headers) == before  # the full list still holds it
    assert _titles(client, alice.headers, folder=work.json()["uuid"]) == ["Quarterly plan"]
    assert _titles(client, alice.headers, folder=home["uuid"]) == []
    listed = client.get("/api/folders", headers=alice.headers).json()["data"]
    assert [(f["name"], f["chats"]) for f in listed] == [("Home", 0), ("Work", 1)]

    renamed = client.patch(
        f"/api/folders/{home['uuid']}", json={"name": "Family"}, headers=alice.headers
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Family"
    out = client.put(
        f"/api/conversations/{plan['uuid']}/folder", json={"folder": None}, headers=alice.headers
    )
    assert out.status_code == 200
    assert _titles(client, alice.headers, folder=work.json()["uuid"]) == []


def test_deleting_a_folder_keeps_its_chats(client: TestClient) -> None:
    alice = create_user()
    folder = client.post("/api/folders", json={"name": "Trips"}, headers=alice.headers).json()
    for title in ("Rome", "Oslo"):
        chat = create_conversation(client, alice, title=title)
        client.put(
            f"/api/conversations/{chat['uuid']}/folder",
            json={"folder": folder["uuid"]},
            headers=alice.headers,
        )
    gone = client.delete(f"/api/folders/{folder['uuid']}", headers=alice.headers)
    assert (
        gone.status_code == 200 and gone.json()["message"] == "Folder deleted; its 2 chats are kept"
    )
    assert sorted(_titles(client, alice.headers)) == ["Oslo", "Rome"]
    assert client.get("/api/folders", headers=alice.headers).json()["data"] == []
    again = client.post("/api/folders", json={"name": "Trips"}, headers=alice.headers).json()
    assert _titles(client, alice.headers, folder=again["uuid"]) == []  # not the old folder's


def test_folders_are_private_and_input_is_checked(client: TestClient) -> None:
    alice, bob = create_user(), create_user()
    mine = client.post("/api/folders", json={"name": "Mine"}, headers=alice.headers).json()
    bobs_chat = create_conversation(client, bob, title="Bob's")
    alices_chat = create_conversation(client, alice, title="Alice's")
    assert client.get("/api/folders", headers=bob.headers).json()["data"] == []
    for r in (
        client.patch(f"/api/folders/{mine['uuid']}", json={"name": "x"}, headers=bob.headers),
        client.delete(f"/api/folders/{mine['uuid']}", headers=bob.headers),
        client.get("/api/conversations", params={"folder": mine["uuid"]}, headers=bob.headers),
        client.put(
            f"/api/conversations/{bobs_chat['uuid']}/folder",
            json={"folder": mine["uuid"]},
            headers=bob.headers,
        ),
        client.put(
            f"/api/conversations/{bobs_chat['uuid']}/folder",
            json={"folder": None},
            headers=alice.headers,
        ),
    ):
        assert r.status_code == 404, r.text
        assert r.json()["detail"] in ("Folder not found", "Conversation not found")
    dup = client.post("/api/folders", json={"name": "Mine"}, headers=alice.headers)
    assert dup.status_code == 409 and "already have a folder named" in dup.json()["detail"]
    clash = client.post("/api/folders", json={"name": "Other"}, headers=alice.headers).json()
    renamed = client.patch(
        f"/api/folders/{clash['uuid']}", json={"name": "Mine"}, headers=alice.headers
    )
    assert renamed.status_code == 409
    assert (
        client.post("/api/folders", json={"name": "Mine"}, headers=bob.headers).status_code == 201
    )
    for body in ({"name": "   "}, {"name": "x" * 81}, {}, {"name": "a", "extra": 1}):
        assert client.post("/api/folders", json=body, headers=alice.headers).status_code == 422
    bad = client.put(
        f"/api/conversations/{alices_chat['uuid']}/folder", json={}, headers=alice.headers
    )
    assert bad.status_code == 422
    assert client.get("/api/folders").status_code == 401
