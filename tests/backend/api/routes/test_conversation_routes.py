"""Conversation CRUD, listing rules, and isolation between users."""

import pytest
from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient


def test_create_and_read(client: TestClient) -> None:
    user = create_user()
    created = create_conversation(client, user, title="Trip plans", default_model="gpt-4o")
    assert created["title"] == "Trip plans" and created["default_model"] == "gpt-4o"
    assert created["pinned"] is False and created["archived"] is False
    read = client.get(f"/api/conversations/{created['uuid']}", headers=user.headers)
    assert read.status_code == 200 and read.json() == created


def test_create_with_a_model_the_user_may_not_use_is_403(client: TestClient) -> None:
    user = create_user()
    response = client.post(
        "/api/conversations", json={"default_model": "secret-model"}, headers=user.headers
    )
    assert response.status_code == 403


def test_list_is_paged_searchable_and_most_recent_first(client: TestClient) -> None:
    user = create_user()
    first = create_conversation(client, user, title="Alpha 100% sure")
    create_conversation(client, user, title="Beta")
    third = create_conversation(client, user, title="alphabet")
    listing = client.get("/api/conversations", headers=user.headers).json()
    assert listing["count"] == 3
    assert listing["data"][0]["uuid"] == third["uuid"]
    page = client.get("/api/conversations?limit=1&offset=1", headers=user.headers).json()
    assert page["count"] == 3 and len(page["data"]) == 1
    found = client.get("/api/conversations", params={"q": "ALPHA"}, headers=user.headers).json()
    assert {c["uuid"] for c in found["data"]} == {first["uuid"], third["uuid"]}
    # LIKE wildcards in the search are literal characters.
    percent = client.get("/api/conversations", params={"q": "100%"}, headers=user.headers).json()
    assert [c["uuid"] for c in percent["data"]] == [first["uuid"]]


def test_new_message_moves_a_conversation_to_the_top(client: TestClient) -> None:
    user = create_user()
    older = create_conversation(client, user)
    create_conversation(client, user)
    send_message(client, user, older["uuid"], "bump")
    listing = client.get("/api/conversations", headers=user.headers).json()
    assert listing["data"][0]["uuid"] == older["uuid"]


def test_pinned_first_and_archived_filter(client: TestClient) -> None:
    user = create_user()
    pinned = create_conversation(client, user, title="pinned")
    archived = create_conversation(client, user, title="archived")
    create_conversation(client, user, title="latest")
    client.patch(
        f"/api/conversations/{pinned['uuid']}", json={"pinned": True}, headers=user.headers
    )
    client.patch(
        f"/api/conversations/{archived['uuid']}", json={"archived": True}, headers=user.headers
    )
    active = client.get("/api/conversations", headers=user.headers).json()
    assert active["count"] == 2 and active["data"][0]["uuid"] == pinned["uuid"]
    only_archived = client.get("/api/conversations?archived=true", headers=user.headers).json()
    assert [c["uuid"] for c in only_archived["data"]] == [archived["uuid"]]


def test_patch_title_model_pinned_archived(client: TestClient) -> None:
    user = create_user()
    conversation = create_conversation(client, user, default_model="gpt-4o")
    url = f"/api/conversations/{conversation['uuid']}"
    response = client.patch(
        url, json={"title": "  Renamed  ", "pinned": True}, headers=user.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Renamed" and body["pinned"] is True
    assert body["default_model"] == "gpt-4o"  # untouched fields are kept
    assert body["updated_at"] == conversation["updated_at"]  # renaming is not activity
    cleared = client.patch(url, json={"default_model": None}, headers=user.headers).json()
    assert cleared["default_model"] is None
    forbidden = client.patch(url, json={"default_model": "not-allowed"}, headers=user.headers)
    assert forbidden.status_code == 403


@pytest.mark.parametrize(
    "body", [{"title": ""}, {"title": "x" * 201}, {"pinned": "often"}, {"owner": 1}]
)
def test_patch_rejects_invalid_bodies(client: TestClient, body: dict) -> None:
    user = create_user()
    conversation = create_conversation(client, user)
    response = client.patch(
        f"/api/conversations/{conversation['uuid']}", json=body, headers=user.headers
    )
    assert response.status_code == 422


def test_delete_removes_messages_and_responses(client: TestClient) -> None:
    from sqlalchemy import func, select

    from backend.core.db import SessionLocal
    from backend.models import Message, Response

    user = create_user()
    conversation = create_conversation(client, user)
    send_message(client, user, conversation["uuid"], "hello")
    url = f"/api/conversations/{conversation['uuid']}"
    assert client.delete(url, headers=user.headers).status_code == 200
    assert client.get(url, headers=user.headers).status_code == 404
    with SessionLocal() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.scalar(select(func.count()).select_from(Response)) == 0


def test_other_users_conversation_is_404_on_every_route(client: TestClient) -> None:
    owner, intruder = create_user(), create_user()
    conversation = create_conversation(client, owner)
    send_message(client, owner, conversation["uuid"], "private")
    base = f"/api/conversations/{conversation['uuid']}"
    attempts = [
        ("GET", base, None),
        ("PATCH", base, {"title": "mine now"}),
        ("DELETE", base, None),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/messages", {"content": "hi"}),
        ("POST", f"{base}/regenerate", {}),
        ("DELETE", f"{base}/messages", None),
    ]
    for method, url, body in attempts:
        response = client.request(method, url, json=body, headers=intruder.headers)
        assert response.status_code == 404, (method, url)
        assert response.json() == {"detail": "Conversation not found"}
    listing = client.get("/api/conversations", headers=intruder.headers).json()
    assert listing["count"] == 0
    # And nothing changed for the owner.
    assert client.get(f"{base}/messages", headers=owner.headers).json()["count"] == 2


def test_unknown_conversation_is_404(client: TestClient) -> None:
    user = create_user()
    assert client.get("/api/conversations/nope", headers=user.headers).status_code == 404


def test_conversation_routes_need_login(client: TestClient) -> None:
    assert client.get("/api/conversations").status_code == 401
    assert client.post("/api/conversations", json={}).status_code == 401


def test_renaming_pinning_or_archiving_keeps_the_place_in_the_list(client: TestClient) -> None:
    user = create_user()
    older = create_conversation(client, user, title="older")
    newer = create_conversation(client, user, title="newer")
    send_message(client, user, newer["uuid"], "the latest activity")
    url = f"/api/conversations/{older['uuid']}"
    assert client.patch(url, json={"title": "older, renamed"}, headers=user.headers).is_success
    assert client.patch(url, json={"tools_enabled": False}, headers=user.headers).is_success
    listed = client.get("/api/conversations", headers=user.headers).json()["data"]
    assert [c["title"] for c in listed] == ["newer", "older, renamed"]
    send_message(client, user, older["uuid"], "now it is the latest")
    listed = client.get("/api/conversations", headers=user.headers).json()["data"]
    assert [c["title"] for c in listed] == ["older, renamed", "newer"]


def test_title_search_matches_whole_words_and_prefixes(client: TestClient) -> None:
    user = create_user()
    for title in ("Order 142 shipped", "Order 42 lost", "Answer 420", "customs forms"):
        create_conversation(client, user, title=title)

    def titles(q: str) -> set[str]:
        found = client.get("/api/conversations", params={"q": q}, headers=user.headers).json()
        assert found["count"] == len(found["data"])
        return {c["title"] for c in found["data"]}

    assert titles("42") == {"Order 42 lost", "Answer 420"}
    assert titles("tom") == set()  # not inside "customs"
    assert titles("cust") == {"customs forms"}
    assert titles("order 42") == {"Order 42 lost"}
    paged = client.get(
        "/api/conversations", params={"q": "order", "limit": 1}, headers=user.headers
    ).json()
    assert paged["count"] == 2 and len(paged["data"]) == 1
