"""Search: own messages and titles only, ranked, highlighted, archived included."""

from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient

from backend.services.search import snippet


def test_search_finds_own_messages_ranked_with_highlights(client: TestClient) -> None:
    alice, bob = create_user(), create_user()
    chat = create_conversation(client, alice, title="Gardening notes")
    send_message(client, alice, chat["uuid"], "How deep should tomato seeds be planted?")
    send_message(client, alice, chat["uuid"], "Tomato, tomato, TOMATO: why do tomato plants wilt?")
    other = create_conversation(client, bob)
    send_message(client, bob, other["uuid"], "bob's secret tomato recipe")
    found = client.get("/api/search?q=tomato", headers=alice.headers).json()
    messages = [hit for hit in found["data"] if hit["kind"] == "message"]
    assert found["count"] == 4  # 2 questions + 2 mock answers quoting them
    assert all(hit["conversation_uuid"] == chat["uuid"] for hit in found["data"])
    assert "secret" not in str(found)
    assert messages[0]["snippet"].lower().count("tomato") >= 4  # the densest message ranks first
    hit = messages[0]
    assert all(hit["snippet"][a:b].lower() == "tomato" for a, b in hit["highlights"])
    assert "<mark>Tomato</mark>" in hit["snippet_html"] and hit["score"] > 0
    bob_found = client.get("/api/search?q=tomato", headers=bob.headers).json()
    assert {h["conversation_uuid"] for h in bob_found["data"]} == {other["uuid"]}


def test_all_words_must_match_titles_rank_first_and_archived_are_found(
    client: TestClient,
) -> None:
    alice = create_user()
    chat = create_conversation(client, alice, title="Holiday packing list")
    send_message(client, alice, chat["uuid"], "remember the packing cubes")
    send_message(client, alice, create_conversation(client, alice)["uuid"], "cubes of ice")
    client.patch(
        f"/api/conversations/{chat['uuid']}", json={"archived": True}, headers=alice.headers
    )
    found = client.get("/api/search?q=packing", headers=alice.headers).json()
    assert found["data"][0]["kind"] == "title" and found["data"][0]["archived"] is True
    both = client.get("/api/search?q=packing%20cubes", headers=alice.headers).json()
    assert {h["kind"] for h in both["data"]} == {"message"}
    assert all(h["conversation_uuid"] == chat["uuid"] for h in both["data"])
    active = client.get("/api/search?q=packing&include_archived=false", headers=alice.headers)
    assert active.json()["count"] == 0
    paged = client.get("/api/search?q=cubes&limit=1&offset=1", headers=alice.headers).json()
    assert len(paged["data"]) == 1 and paged["count"] == 5  # + the title "cubes of ice"


def test_search_input_rules(client: TestClient) -> None:
    alice = create_user()
    assert client.get("/api/search?q=x").status_code == 401
    assert client.get("/api/search", headers=alice.headers).status_code == 422
    assert client.get("/api/search?q=" + "a" * 201, headers=alice.headers).status_code == 422
    assert client.get("/api/search?q=%20%20", headers=alice.headers).status_code == 400
    assert client.get("/api/search?q=x&limit=0", headers=alice.headers).status_code == 422
    odd = client.get("/api/search?q=%25_%27%22%5C", headers=alice.headers)
    assert odd.status_code in (200, 400)


def test_snippet_windows_and_escapes() -> None:
    text = "<b>" + "filler " * 60 + "the Needle is here " + "tail " * 60
    plain, spans, marked = snippet(text, ["needle"])
    assert plain.startswith("…") and plain.endswith("…") and len(plain) <= 170
    assert [plain[a:b] for a, b in spans] == ["Needle"]
    assert "<mark>Needle</mark>" in marked and "<b>" not in marked


def test_search_matches_at_word_starts_only(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice, title="Numbers")
    send_message(client, alice, chat["uuid"], "ticket 142 is closed")
    send_message(client, alice, chat["uuid"], "ticket 42 is open, see #42-b")
    send_message(client, alice, chat["uuid"], "custom tomatoes")
    found = client.get("/api/search?q=42", headers=alice.headers).json()
    snippets = [hit["snippet"] for hit in found["data"]]
    assert snippets and all("142" not in s for s in snippets), snippets
    assert all(hit["snippet"][a:b] == "42" for hit in found["data"] for a, b in hit["highlights"])
    tom = client.get("/api/search?q=tom", headers=alice.headers).json()["data"]
    assert tom and all(
        hit["snippet"][a:b].lower() == "tom" for hit in tom for a, b in hit["highlights"]
    )
    assert client.get("/api/search?q=ustom", headers=alice.headers).json()["count"] == 0
