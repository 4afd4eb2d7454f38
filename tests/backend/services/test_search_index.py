"""The search index is written with every stored message and leaves with it; queries read it."""

from typing import Any

from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.core.db import SessionLocal
from backend.models import Message, SearchTerm
from backend.services import words
from backend.services.search_index import MAX_TERMS_PER_MESSAGE, index_rows


def _indexed_terms(user_id: int) -> dict[str, int]:
    with SessionLocal() as session:
        rows = session.execute(
            select(SearchTerm.term, func.count())
            .where(SearchTerm.user_id == user_id)
            .group_by(SearchTerm.term)
        )
        return {term: count for term, count in rows}  # noqa: C416 - rows are Row objects


def _search(client: TestClient, headers: dict[str, str], q: str, **query: Any) -> dict:
    r = client.get("/api/search", params={"q": q, **query}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_questions_and_answers_are_indexed_when_stored_and_leave_with_them(
    client: TestClient,
) -> None:
    alice = create_user()
    chat = create_conversation(client, alice, title="Notes")
    send_message(client, alice, chat["uuid"], "The Zanzibar archipelago, Zanzibar again")
    terms = _indexed_terms(alice.id)
    assert terms["zanzibar"] >= 2  # the question and the mock answer quoting it
    with SessionLocal() as session:
        row = session.scalars(
            select(SearchTerm).where(SearchTerm.user_id == alice.id, SearchTerm.term == "zanzibar")
        ).first()
        assert row is not None and row.occurrences >= 2
        assert row.weight == words.weight(row.occurrences, row.words)
    found = _search(client, alice.headers, "zanz")
    assert found["count"] == terms["zanzibar"]
    assert (
        client.delete(f"/api/conversations/{chat['uuid']}", headers=alice.headers).status_code
        == 200
    )
    assert _indexed_terms(alice.id) == {}  # deleted with the conversation's messages
    assert _search(client, alice.headers, "zanzibar")["count"] == 0


def test_regenerating_indexes_the_new_version_beside_the_old(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice)
    send_message(client, alice, chat["uuid"], "tell me about kumquats")
    with SessionLocal() as session:
        before = session.scalar(select(func.count()).where(SearchTerm.user_id == alice.id))
    r = client.post(f"/api/conversations/{chat['uuid']}/regenerate", json={}, headers=alice.headers)
    assert r.status_code in (200, 201), r.text
    with SessionLocal() as session:
        after = session.scalar(select(func.count()).where(SearchTerm.user_id == alice.id))
        stale = session.scalar(
            select(func.count())
            .select_from(SearchTerm)
            .outerjoin(Message, Message.id == SearchTerm.message_id)
            .where(SearchTerm.user_id == alice.id, Message.id.is_(None))
        )
    # The old answer stays as a version (and findable); the new one adds its own rows, the
    # same words as the mock's answer: the question's rows plus the answer's, twice.
    answer_rows = before - len(set("tell me about kumquats".split()))
    assert stale == 0 and after == before + answer_rows


def test_imported_and_restored_messages_are_found(client: TestClient) -> None:
    alice, bob = create_user(), create_user()
    chat = create_conversation(client, alice, title="Trip")
    send_message(client, alice, chat["uuid"], "the fjord cruise leaves at nine")
    export = client.get("/api/export", headers=alice.headers).json()
    imported = client.post("/api/import", json=export, headers=bob.headers)
    assert imported.status_code in (200, 201), imported.text
    hits = _search(client, bob.headers, "fjord")["data"]
    assert hits and {h["kind"] for h in hits} == {"message"}
    snapshot = client.post(
        f"/api/conversations/{chat['uuid']}/snapshots", json={"name": "s"}, headers=alice.headers
    ).json()
    restored = client.post(
        f"/api/conversations/{chat['uuid']}/snapshots/{snapshot['uuid']}/restore",
        json={"mode": "new"},
        headers=alice.headers,
    )
    assert restored.status_code in (200, 201), restored.text
    conversations = {
        h["conversation_uuid"] for h in _search(client, alice.headers, "fjord")["data"]
    }
    assert conversations == {chat["uuid"], restored.json()["uuid"]}


def test_words_prefixes_and_ranking_from_the_index(client: TestClient) -> None:
    alice = create_user()
    chat = create_conversation(client, alice, title="Numbers")
    for text in (
        "ticket 142 is closed",
        "ticket 42 is open",
        "42 42 42 and the answer is 42",
        "water was warm, the way it was",
        "waterfall",
    ):
        send_message(client, alice, chat["uuid"], text)
    found = _search(client, alice.headers, "42")
    assert all("142" not in hit["snippet"] for hit in found["data"])
    assert found["data"][0]["snippet"].startswith("42 42 42")  # most occurrences first
    both = _search(client, alice.headers, "ticket 42")
    assert {hit["snippet"] for hit in both["data"]} >= {"ticket 42 is open"}
    assert all("142" not in hit["snippet"] for hit in both["data"])
    prefix = _search(client, alice.headers, "wat")
    assert {"water was warm, the way it was", "waterfall"} <= {h["snippet"] for h in prefix["data"]}
    several = _search(client, alice.headers, "wa")  # was, warm, water, waterfall, way
    assert "water was warm, the way it was" in {h["snippet"] for h in several["data"]}
    assert several["count"] >= 4
    archived = client.patch(
        f"/api/conversations/{chat['uuid']}", json={"archived": True}, headers=alice.headers
    )
    assert archived.status_code == 200
    assert _search(client, alice.headers, "42", include_archived="false")["count"] == 0
    assert _search(client, alice.headers, "ticket 42", include_archived="false")["count"] == 0
    assert _search(client, alice.headers, "wa", include_archived="false")["count"] == 0


def test_index_rows_are_bounded_and_words_are_cut() -> None:
    text = " ".join(f"word{i}" for i in range(MAX_TERMS_PER_MESSAGE + 500)) + " " + "x" * 100
    rows = index_rows(user_id=1, message_id=1, conversation_id=1, content=text)
    assert len(rows) == MAX_TERMS_PER_MESSAGE
    assert max(len(row["term"]) for row in rows) <= words.MAX_TERM
    assert words.split("Été, #42-b CAN'T") == ["été", "42", "b", "can", "t"]
