"""Uploaded exports imported in the background: ChatGPT's zip and conversations.json, our own
export, and files that are not exports, through the routes."""

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from chat_factories import ChatUser, create_user
from chatgpt_exports import Shape, conversation, write_export, write_zip
from fastapi.testclient import TestClient

from backend.core.config import settings


@pytest.fixture(autouse=True)
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "spool"
    monkeypatch.setattr(settings, "IMPORT_SPOOL_DIR", str(directory))
    return directory


def upload(client: TestClient, user: ChatUser, body: bytes, name: str = "export.zip") -> Any:
    return client.post(
        f"/api/imports?filename={name}",
        content=body,
        headers={**user.headers, "Content-Type": "application/octet-stream"},
    )


def wait_for(client: TestClient, user: ChatUser, job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"/api/imports/{job}", headers=user.headers).json()
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"import did not end: {state}")


def imported(client: TestClient, user: ChatUser, body: bytes, name: str = "x.zip") -> dict:
    started = upload(client, user, body, name)
    assert started.status_code == 202, started.text
    assert started.headers["location"] == f"/api/imports/{started.json()['uuid']}"
    return wait_for(client, user, started.json()["uuid"])


def _export(tmp_path: Path, count: int, shape: Shape = Shape()) -> tuple[bytes, bytes]:
    write_export(tmp_path / "conversations.json", count, shape)
    write_zip(tmp_path / "export.zip", tmp_path / "conversations.json")
    return (tmp_path / "conversations.json").read_bytes(), (tmp_path / "export.zip").read_bytes()


def test_a_chatgpt_zip_is_imported_with_titles_times_and_archive(
    client: TestClient, tmp_path: Path, spool_dir: Path
) -> None:
    alice = create_user()
    _, zipped = _export(tmp_path, 12)
    state = imported(client, alice, zipped)
    assert state["status"] == "done", state
    assert state["source"] == "chatgpt"
    # Every branch: 6 messages shown and the regenerated answer beside one, per conversation.
    assert (state["imported"], state["conversations_done"], state["messages"]) == (12, 12, 84)
    assert state["bytes_read"] == state["bytes_total"] == len(zipped)
    assert state["skipped_messages"] == {
        "hidden system messages": 24,
        "tool calls and tool output": 24,
        "empty messages": 12,
    }
    assert state["skipped_conversations"] == {}
    assert list(spool_dir.iterdir()) == []  # the upload is gone once imported
    chats = client.get("/api/conversations?limit=100", headers=alice.headers).json()["data"]
    assert len(chats) == 11  # the archived one is listed with the archive
    archive = client.get("/api/conversations?archived=true", headers=alice.headers).json()["data"]
    assert [c["title"] for c in archive] == ["Chat number 9"]
    first = next(c for c in chats if c["title"] == "Chat number 0")
    assert first["created_at"].startswith("2023-11-14T22:13:20")
    messages = client.get(f"/api/conversations/{first['uuid']}/messages", headers=alice.headers)
    rows = messages.json()["data"]
    assert [m["role"] for m in rows] == ["user", "assistant"] * 3
    source = conversation(0)
    assert rows[0]["content"] == source["mapping"]["q0"]["message"]["content"]["parts"][0]
    assert rows[-1]["content"] == source["mapping"]["a2"]["message"]["content"]["parts"][0]
    assert "replaced by another" not in json.dumps(rows)
    # It opens on ChatGPT's current node; the other answer is a version beside it.
    with_versions = [m for m in rows if len(m["versions"]) > 1]
    assert len(with_versions) == 1 and with_versions[0]["role"] == "assistant", rows
    other = next(v for v in with_versions[0]["versions"] if v != with_versions[0]["uuid"])
    shown = client.put(
        f"/api/conversations/{first['uuid']}/current",
        json={"message_uuid": other},
        headers=alice.headers,
    )
    assert shown.status_code == 200, shown.text
    branch = client.get(f"/api/conversations/{first['uuid']}/messages", headers=alice.headers)
    answer = source["mapping"]["alt"]["message"]["content"]["parts"][0]
    assert answer in [m["content"] for m in branch.json()["data"]]


def test_importing_the_same_export_twice_adds_nothing(client: TestClient, tmp_path: Path) -> None:
    alice, bob = create_user(), create_user()
    plain, zipped = _export(tmp_path, 5)
    assert imported(client, alice, plain, "conversations.json")["imported"] == 5
    again = imported(client, alice, zipped)
    assert (again["status"], again["imported"], again["messages"]) == ("done", 0, 0)
    assert again["skipped_conversations"] == {"already imported": 5}
    # The small JSON route keys conversations the same way: nothing added there either.
    small = client.post("/api/import", json=json.loads(plain), headers=alice.headers).json()
    assert small["imported"] == 0
    total = client.get("/api/conversations?limit=100", headers=alice.headers).json()["data"]
    assert len(total) == 5 - 0  # none archived among the first five
    # Another account gets its own copies.
    assert imported(client, bob, zipped)["imported"] == 5


def test_an_open_chat_export_goes_the_same_way(client: TestClient) -> None:
    alice, bob = create_user(), create_user()
    body = {
        "format": "openchat-export",
        "version": 1,
        "conversations": [
            {"uuid": "c1", "title": "One", "messages": [{"role": "user", "content": "hi"}]},
            {"uuid": "c2", "messages": [{"role": "robot", "content": "?"}]},
            {"uuid": "c3", "messages": []},
        ],
    }
    state = imported(client, alice, json.dumps(body).encode(), "openchat.json")
    assert (state["status"], state["source"], state["imported"]) == ("done", "openchat", 1)
    assert state["skipped_conversations"] == {
        "not valid Open Chat conversations": 1,
        "without messages (only hidden, tool or empty ones)": 1,
    }
    del bob


def test_files_that_are_not_exports_get_a_sentence(client: TestClient) -> None:
    alice = create_user()
    for body, words in (
        (b"", "empty"),
        (b"hello there", "neither ChatGPT's export"),
        (b"PK\x03\x04 not really a zip", "zip file cannot be read"),
    ):
        answer = upload(client, alice, body)
        assert answer.status_code == 400, answer.text
        assert words in answer.json()["detail"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("photo.jpg", b"\xff\xd8")
    answer = upload(client, alice, archive.getvalue())
    assert answer.status_code == 400 and "no conversations.json" in answer.json()["detail"]
    # Refused uploads leave no job behind, so the next one may start.
    assert client.get("/api/imports", headers=alice.headers).json() == []


def test_a_broken_file_fails_with_a_reason_and_keeps_what_came_before(
    client: TestClient, tmp_path: Path
) -> None:
    alice = create_user()
    items = [conversation(i) for i in range(3)]
    body = json.dumps(items).encode()
    cut = body[: len(body) - 4000]  # the last conversation is cut off mid-way
    state = imported(client, alice, cut, "conversations.json")
    assert state["status"] == "failed"
    assert state["error"].startswith("The file is not valid JSON"), state["error"]
    assert state["imported"] == 2 and "2 conversations were imported" in state["error"]
    # Items that are not conversations are skipped and counted, the rest imported.
    mixed = json.dumps([1, {"title": "no id"}, conversation(7), {"id": "x", "mapping": 3}])
    state = imported(client, alice, mixed.encode(), "conversations.json")
    assert (state["status"], state["imported"]) == ("done", 1)
    assert state["skipped_conversations"] == {
        "not ChatGPT conversations (no id or no mapping of messages)": 3
    }


def test_one_import_at_a_time_and_only_ones_own(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = create_user(), create_user()
    _, zipped = _export(tmp_path, 400)
    monkeypatch.setattr(settings, "IMPORT_BATCH_CONVERSATIONS", 5)
    first = upload(client, alice, zipped)
    assert first.status_code == 202
    second = upload(client, alice, zipped)
    assert second.status_code == 409 and "already under way" in second.json()["detail"]
    job = first.json()["uuid"]
    assert client.get(f"/api/imports/{job}", headers=bob.headers).status_code == 404
    assert client.get(f"/api/imports/{job}").status_code == 401
    listed = client.get("/api/imports", headers=alice.headers).json()
    assert [j["uuid"] for j in listed] == [job]
    assert wait_for(client, alice, job)["imported"] == 400
    assert upload(client, alice, zipped).status_code == 202  # once it ended, the next may go


def test_a_storage_limit_ends_the_job_with_its_sentence(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = create_user()
    _, zipped = _export(tmp_path, 12)
    monkeypatch.setattr(settings, "MAX_CONVERSATIONS_PER_USER", 5)
    monkeypatch.setattr(settings, "IMPORT_BATCH_CONVERSATIONS", 2)
    state = imported(client, alice, zipped)
    assert state["status"] == "failed"
    assert state["error"].startswith("Conversation limit reached"), state["error"]
    assert state["imported"] == 4 and "4 conversations were imported before" in state["error"]
    assert client.get("/api/conversations", headers=alice.headers).json()["count"] == 4
