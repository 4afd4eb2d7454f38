"""Zero-access conversations through the API: the key's life, sealing, conversion, search."""

import time
from datetime import timedelta
from typing import Any

import pytest
from chat_factories import DEFAULT_PASSWORD, create_user
from chat_factories import wait_for_privacy_state as wait_for_state
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from backend.core.config import settings
from backend.core.db import SessionLocal, engine
from backend.models import AuthSession, SessionContentKey, User, UserContentKey, utcnow
from backend.services import auth_sessions

CANARY_TEXT = "canary-text-7f3a"
CANARY_TITLE = "canary-title-91bc"
NEW_PASSWORD = "a brand new passphrase"


def sign_in(client: TestClient, username: str, password: str = DEFAULT_PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def turn_on(client: TestClient, headers: dict[str, str]) -> str:
    response = client.post("/api/privacy/on", json={"password": DEFAULT_PASSWORD}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["recovery_key"]



def zero_access_user(client: TestClient) -> dict[str, str]:
    """A new user with the mode on, signed in again so the session holds the key."""
    user = create_user()
    headers = sign_in(client, user.username)
    turn_on(client, headers)
    wait_for_state(client, headers, "on")
    return sign_in(client, user.username)


def raw_column(table: str, column: str) -> list[str]:
    """What the database holds, bypassing the sealed column type."""
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT {column} FROM {table}"))
        return [row[0] for row in rows if row[0] is not None]


def chat_with(client: TestClient, headers: dict[str, str], question: str) -> dict[str, Any]:
    made = client.post("/api/conversations", json={"title": CANARY_TITLE}, headers=headers)
    assert made.status_code == 201, made.text
    uuid = made.json()["uuid"]
    answered = client.post(
        f"/api/conversations/{uuid}/messages", json={"content": question}, headers=headers
    )
    assert answered.status_code == 201, answered.text
    return made.json()


def messages_of(client: TestClient, headers: dict[str, str], uuid: str) -> list[str]:
    response = client.get(f"/api/conversations/{uuid}/messages", headers=headers)
    assert response.status_code == 200, response.text
    return [message["content"] for message in response.json()["data"]]


def test_turning_on_seals_existing_and_new_content_and_the_owner_reads_it(
    client: TestClient,
) -> None:
    alice = create_user(username="alice")
    headers = sign_in(client, "alice")
    before = chat_with(client, headers, f"before {CANARY_TEXT}")
    recovery = turn_on(client, headers)
    assert len(recovery.replace("-", "")) == 26
    wait_for_state(client, headers, "on")
    after = chat_with(client, headers, f"after {CANARY_TEXT}")
    stored = raw_column("messages", "content") + raw_column("conversations", "title")
    assert stored and all(value.startswith("zs1:") for value in stored)
    assert not any(CANARY_TEXT in value or CANARY_TITLE in value for value in stored)
    for conversation in (before, after):
        shown = messages_of(client, headers, conversation["uuid"])
        assert any(CANARY_TEXT in content for content in shown)
    listed = client.get("/api/conversations", headers=headers).json()["data"]
    assert {c["title"] for c in listed} == {CANARY_TITLE}
    # Sessions open before it was turned on end (they could not read or write any more)...
    assert client.get("/api/auth/me", headers=alice.headers).status_code == 401
    # ...and a session made without the password (no key) sees placeholders, cannot write.
    keyless = session_without_the_password(alice.id)
    shown = messages_of(client, keyless, before["uuid"])
    assert shown and all(content == "(sealed — only the owner can read this)" for content in shown)
    titles = client.get("/api/conversations", headers=keyless).json()["data"]
    assert {c["title"] for c in titles} == {"(sealed — only the owner can read this)"}
    refused = client.post(
        f"/api/conversations/{before['uuid']}/messages", json={"content": "more"}, headers=keyless
    )
    assert refused.status_code == 423
    assert "recovery key" in refused.json()["detail"]


def session_without_the_password(user_id: int) -> dict[str, str]:
    with SessionLocal() as session:
        user = session.get_one(User, user_id)
        token, _ = auth_sessions.create_session(session=session, user=user)
    return {"Authorization": f"Bearer {token}"}


def test_wrong_password_turns_nothing_on(client: TestClient) -> None:
    create_user(username="bob")
    headers = sign_in(client, "bob")
    wrong = client.post("/api/privacy/on", json={"password": "not it at all"}, headers=headers)
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "The password is not correct."}
    assert client.get("/api/privacy", headers=headers).json()["state"] == "off"
    wrong_sign_in = client.post("/api/auth/login", json={"username": "bob", "password": "nope"})
    assert wrong_sign_in.status_code == 401


def test_two_sessions_hold_the_key_and_sign_out_drops_only_its_own(client: TestClient) -> None:
    create_user(username="carol")
    first = sign_in(client, "carol")
    conversation = chat_with(client, first, CANARY_TEXT)
    turn_on(client, first)
    wait_for_state(client, first, "on")
    second = sign_in(client, "carol")
    assert any(CANARY_TEXT in m for m in messages_of(client, second, conversation["uuid"]))
    assert any(CANARY_TEXT in m for m in messages_of(client, first, conversation["uuid"]))
    with SessionLocal() as session:
        assert len(session.scalars(select(SessionContentKey)).all()) == 2
    assert client.post("/api/auth/logout", headers=second).status_code == 200
    with SessionLocal() as session:
        assert len(session.scalars(select(SessionContentKey)).all()) == 1
    assert any(CANARY_TEXT in m for m in messages_of(client, first, conversation["uuid"]))


def test_password_change_rewraps_the_key(client: TestClient) -> None:
    create_user(username="dora")
    headers = sign_in(client, "dora")
    conversation = chat_with(client, headers, CANARY_TEXT)
    turn_on(client, headers)
    wait_for_state(client, headers, "on")
    changed = client.post(
        "/api/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    again = sign_in(client, "dora", NEW_PASSWORD)
    assert client.get("/api/privacy", headers=again).json()["session_holds_key"] is True
    assert any(CANARY_TEXT in m for m in messages_of(client, again, conversation["uuid"]))


def test_admin_reset_locks_the_content_until_the_recovery_key(client: TestClient) -> None:
    admin = create_user(username="root", is_admin=True)
    erin = create_user(username="erin")
    headers = sign_in(client, "erin")
    conversation = chat_with(client, headers, CANARY_TEXT)
    recovery = turn_on(client, headers)
    wait_for_state(client, headers, "on")
    listed = client.get("/api/admin/users", headers=admin.headers).json()["data"]
    assert {u["username"]: u["zero_access"] for u in listed} == {"root": False, "erin": True}
    reset = client.patch(
        f"/api/admin/users/{erin.id}", json={"password": NEW_PASSWORD}, headers=admin.headers
    )
    assert reset.status_code == 200, reset.text
    locked = sign_in(client, "erin", NEW_PASSWORD)
    assert client.get("/api/privacy", headers=locked).json() == {
        "state": "on",
        "session_holds_key": False,
        "required": False,
        "converting": False,
        "cursor": "",
    }
    assert CANARY_TEXT not in str(messages_of(client, locked, conversation["uuid"]))
    wrong = client.post(
        "/api/privacy/restore",
        json={"recovery_key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE-F", "password": NEW_PASSWORD},
        headers=locked,
    )
    assert wrong.status_code == 400
    assert wrong.json()["detail"] == "That recovery key does not open this account's content."
    typed = recovery.lower().replace("-", " ")  # as someone might type it back
    restored = client.post(
        "/api/privacy/restore",
        json={"recovery_key": typed, "password": NEW_PASSWORD},
        headers=locked,
    )
    assert restored.status_code == 200, restored.text
    assert any(CANARY_TEXT in m for m in messages_of(client, locked, conversation["uuid"]))
    # The key is wrapped under the new password from now on.
    later = sign_in(client, "erin", NEW_PASSWORD)
    assert any(CANARY_TEXT in m for m in messages_of(client, later, conversation["uuid"]))


def test_turning_off_opens_everything_and_deletes_the_key(client: TestClient) -> None:
    create_user(username="fred")
    headers = sign_in(client, "fred")
    conversation = chat_with(client, headers, CANARY_TEXT)
    turn_on(client, headers)
    wait_for_state(client, headers, "on")
    off = client.post("/api/privacy/off", json={"password": DEFAULT_PASSWORD}, headers=headers)
    assert off.status_code == 200, off.text
    wait_for_state(client, headers, "off")
    assert not any(v.startswith("zs1:") for v in raw_column("messages", "content"))
    assert any(CANARY_TEXT in v for v in raw_column("messages", "content"))
    assert raw_column("conversations", "title") == [CANARY_TITLE]
    with SessionLocal() as session:
        assert session.scalars(select(UserContentKey)).all() == []
        assert session.scalars(select(SessionContentKey)).all() == []
    assert any(CANARY_TEXT in m for m in messages_of(client, headers, conversation["uuid"]))


def search_results(client: TestClient, headers: dict[str, str], q: str) -> list[tuple]:
    found = client.get("/api/search", params={"q": q}, headers=headers)
    assert found.status_code == 200, found.text
    body = found.json()
    hits = [
        (h["kind"], h["conversation_uuid"], h["message_uuid"], h["snippet"], h["score"])
        for h in body["data"]
    ]
    return [body["count"], *hits]


@pytest.mark.parametrize("q", ["tomato", "Tom", "soup tomato", "42", "#7", "zebra"])
def test_search_results_are_the_same_with_the_mode_on_and_off(client: TestClient, q: str) -> None:
    create_user(username="gina")
    headers = sign_in(client, "gina")
    for title, question in [
        ("Tomato soup", "how long do I cook tomato soup? Tomatoes: 42 of them"),
        ("Custom tom", "a custom Tomcat config, ticket #7, port 420"),
        ("Zebras", "zebra zebra ZEBRA crossing, not a tomato"),
    ]:
        made = client.post("/api/conversations", json={"title": title}, headers=headers).json()
        client.post(
            f"/api/conversations/{made['uuid']}/messages",
            json={"content": question},
            headers=headers,
        )
    plain = search_results(client, headers, q)
    turn_on(client, headers)
    wait_for_state(client, headers, "on")
    assert search_results(client, headers, q) == plain
    assert plain[0] > 0 or q == "zebra"


def test_export_and_import_round_trip_sealed(client: TestClient) -> None:
    create_user(username="hana")
    headers = sign_in(client, "hana")
    conversation = chat_with(client, headers, CANARY_TEXT)
    turn_on(client, headers)
    wait_for_state(client, headers, "on")
    exported = client.get("/api/export", headers=headers)
    assert exported.status_code == 200, exported.text
    assert CANARY_TEXT in exported.text and CANARY_TITLE in exported.text
    gone = client.delete(f"/api/conversations/{conversation['uuid']}", headers=headers)
    assert gone.status_code == 200 and raw_column("messages", "content") == []
    imported = client.post("/api/import", json=exported.json(), headers=headers)
    assert imported.status_code == 201, imported.text
    stored = raw_column("messages", "content") + raw_column("conversations", "title")
    assert len(stored) == 3 and all(value.startswith("zs1:") for value in stored)
    listed = client.get("/api/conversations", headers=headers).json()["data"]
    assert [c["title"] for c in listed] == [CANARY_TITLE]
    shown = messages_of(client, headers, listed[0]["uuid"])
    assert shown == messages_of_export(exported.json())


def messages_of_export(exported: dict[str, Any]) -> list[str]:
    return [m["content"] for c in exported["conversations"] for m in c["messages"]]


def test_a_required_mode_is_turned_on_at_sign_in_with_the_recovery_key_shown_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "ZERO_ACCESS_REQUIRED", True)
    create_user(username="ivan")
    first = client.post("/api/auth/login", json={"username": "ivan", "password": DEFAULT_PASSWORD})
    assert first.status_code == 200
    assert first.json()["recovery_key"]
    headers = {"Authorization": f"Bearer {first.json()['access_token']}"}
    wait_for_state(client, headers, "on")
    again = client.post("/api/auth/login", json={"username": "ivan", "password": DEFAULT_PASSWORD})
    assert again.json()["recovery_key"] is None
    off = client.post("/api/privacy/off", json={"password": DEFAULT_PASSWORD}, headers=headers)
    assert off.status_code == 400
    assert "requires" in off.json()["detail"]


def test_an_expired_session_loses_its_key_and_the_next_sign_in_sweeps_it(
    client: TestClient,
) -> None:
    create_user(username="jo")
    headers = sign_in(client, "jo")
    conversation = chat_with(client, headers, CANARY_TEXT)
    turn_on(client, headers)
    wait_for_state(client, headers, "on")
    with SessionLocal() as session:
        session.execute(update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert client.get("/api/privacy", headers=headers).status_code == 401
    fresh = sign_in(client, "jo")
    with SessionLocal() as session:
        held = session.scalars(select(SessionContentKey)).all()
        assert len(held) == 1 and len(session.scalars(select(AuthSession)).all()) == 1
    assert any(CANARY_TEXT in m for m in messages_of(client, fresh, conversation["uuid"]))


def test_tool_calls_waiting_for_approval_are_sealed_and_decided_by_the_owner(
    client: TestClient,
) -> None:
    create_user(username="kai")
    headers = sign_in(client, "kai")
    turn_on(client, headers)
    wait_for_state(client, headers, "on")
    uuid = client.post("/api/conversations", json={}, headers=headers).json()["uuid"]
    base = f"/api/conversations/{uuid}"
    assert client.patch(base, json={"tool_approval": True}, headers=headers).status_code == 200
    for question, decision, body in [
        ("calculate (1+2)^3", "approve", None),
        ("calculate 7*6", "reject", {"reason": f"not now {CANARY_TEXT}"}),
    ]:
        turn = client.post(f"{base}/messages", json={"content": question}, headers=headers)
        [pending] = turn.json()["tool_executions"]
        assert pending["status"] == "pending"
        decided = client.post(
            f"{base}/tool-executions/{pending['uuid']}/{decision}", json=body, headers=headers
        )
        assert decided.status_code == 201, decided.text
    listed = client.get(f"{base}/tool-executions", headers=headers).json()["data"]
    shown = {(e["status"], e["result"], e["reason"]) for e in listed}
    assert ("succeeded", "27", None) in shown
    assert any(
        status == "rejected" and CANARY_TEXT in (reason or "") for status, _, reason in shown
    )
    stored = raw_column("tool_executions", "arguments") + raw_column("tool_executions", "result")
    stored += raw_column("tool_executions", "reason") + raw_column("messages", "content")
    assert stored and all(value.startswith("zs1:") for value in stored)


def _chatgpt_export(text_: str, title: str) -> bytes:
    import json

    def node(node_id: str, parent: str | None, role: str, words: str) -> dict[str, Any]:
        return {
            "id": node_id,
            "parent": parent,
            "children": [],
            "message": {
                "id": node_id,
                "author": {"role": role},
                "create_time": 1_700_000_000,
                "content": {"content_type": "text", "parts": [words]},
                "metadata": {},
            },
        }

    mapping = {
        "q": node("q", None, "user", text_),
        "a": node("a", "q", "assistant", "an answer about " + text_),
    }
    item = {"id": "c-zero", "title": title, "create_time": 1_700_000_000,
            "update_time": 1_700_000_100, "mapping": mapping, "current_node": "a"}
    return json.dumps([item]).encode()


def test_a_background_import_of_a_zero_access_user_is_sealed(
    client: TestClient, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "IMPORT_SPOOL_DIR", str(tmp_path / "spool"))
    headers = zero_access_user(client)
    started = client.post(
        "/api/imports?filename=conversations.json",
        content=_chatgpt_export(CANARY_TEXT, CANARY_TITLE),
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/api/imports/{started.json()['uuid']}", headers=headers).json()
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert job["status"] == "done" and job["imported"] == 1, job
    # The database holds neither the text nor the title; the owner reads both.
    assert not any(CANARY_TEXT in value for value in raw_column("messages", "content"))
    assert not any(CANARY_TITLE in value for value in raw_column("conversations", "title"))
    assert "7f3a" not in raw_column("search_terms", "term")  # a word of CANARY_TEXT
    listed = client.get("/api/conversations", headers=headers).json()["data"]
    assert [c["title"] for c in listed] == [CANARY_TITLE]
    messages = client.get(f"/api/conversations/{listed[0]['uuid']}/messages", headers=headers)
    assert CANARY_TEXT in messages.text
    found = client.get("/api/search", params={"q": CANARY_TEXT}, headers=headers).json()
    assert found["count"] >= 1, found


def test_the_word_index_never_holds_a_zero_access_users_words(client: TestClient) -> None:
    user = create_user()
    headers = sign_in(client, user.username)
    chat_with(client, headers, "before " + CANARY_TEXT)  # indexed while the mode is off
    assert "7f3a" in raw_column("search_terms", "term")
    turn_on(client, headers)
    wait_for_state(client, headers, "on")
    headers = sign_in(client, user.username)
    chat_with(client, headers, "after " + CANARY_TEXT)
    assert "7f3a" not in raw_column("search_terms", "term")  # sealed: its rows left the index
    sealed = client.get("/api/search", params={"q": "7f3a"}, headers=headers).json()
    assert sealed["count"] >= 2, sealed  # both questions (and answers), in their opened text
    off = client.post("/api/privacy/off", json={"password": DEFAULT_PASSWORD}, headers=headers)
    assert off.status_code in (200, 202), off.text
    wait_for_state(client, headers, "off")
    # Opened: every message holding the word is in the index again, found as it was sealed.
    assert raw_column("search_terms", "term").count("7f3a") == sealed["count"]
    found = client.get("/api/search", params={"q": "7f3a"}, headers=headers).json()
    assert found["count"] == sealed["count"], found
    assert [h["message_uuid"] for h in found["data"]] == [
        h["message_uuid"] for h in sealed["data"]
    ]


def test_editing_and_regenerating_stay_sealed_and_readable(client: TestClient) -> None:
    headers = zero_access_user(client)
    made = chat_with(client, headers, "first " + CANARY_TEXT)
    uuid = made["uuid"]
    listed = client.get(f"/api/conversations/{uuid}/messages", headers=headers).json()["data"]
    question, answer = listed[0], listed[1]
    edited = client.post(
        f"/api/conversations/{uuid}/messages",
        json={"content": "edited " + CANARY_TEXT, "edit_of": question["uuid"]},
        headers=headers,
    )
    assert edited.status_code == 201, edited.text
    again = client.post(
        f"/api/conversations/{uuid}/regenerate",
        json={"message_uuid": edited.json()["assistant_message"]["uuid"]},
        headers=headers,
    )
    assert again.status_code == 201, again.text
    shown = client.get(f"/api/conversations/{uuid}/messages", headers=headers).json()["data"]
    assert shown[0]["content"] == "edited " + CANARY_TEXT
    assert len(shown[0]["versions"]) == 2 and len(shown[1]["versions"]) == 2
    back = client.put(
        f"/api/conversations/{uuid}/current",
        json={"message_uuid": answer["uuid"]},
        headers=headers,
    )
    assert back.status_code == 200, back.text
    old = client.get(f"/api/conversations/{uuid}/messages", headers=headers).json()["data"]
    assert old[0]["content"] == "first " + CANARY_TEXT
    assert not any(CANARY_TEXT in value for value in raw_column("messages", "content"))
