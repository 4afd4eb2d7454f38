"""An import survives `kill -9` of the server: a restarted server resumes the job after its
last committed batch, adds every conversation exactly once, and leaves no upload behind."""

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD
from chatgpt_exports import write_export, write_zip
from fake_openai_server import free_port
from import_service import migrated_env, server

CONVERSATIONS = 3_000


def _client(base: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=60)
    login = http.post("/api/auth/login", json={"username": "alice", "password": DEFAULT_PASSWORD})
    assert login.status_code == 200, login.text
    http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    return http


def _state(http: httpx.Client, job: str) -> dict[str, Any]:
    answer = http.get(f"/api/imports/{job}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _wait(http: httpx.Client, job: str, until: Any, seconds: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until(state := _state(http, job)):
            return state
        time.sleep(0.1)
    raise AssertionError(state)


@pytest.mark.slow
def test_kill_9_mid_import_then_restart_resumes_and_adds_each_once(tmp_path: Path) -> None:
    write_export(tmp_path / "conversations.json", CONVERSATIONS)
    write_zip(tmp_path / "export.zip", tmp_path / "conversations.json")
    spool = tmp_path / "spool"
    env = migrated_env(tmp_path, IMPORT_SPOOL_DIR=str(spool), IMPORT_BATCH_CONVERSATIONS="20")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server(tmp_path, env, port) as process:
        user = {"username": "alice", "email": "alice@example.com", "password": DEFAULT_PASSWORD}
        assert httpx.post(f"{base}/api/auth/register", json=user).status_code == 201
        http = _client(base)
        started = http.post(
            "/api/imports?filename=export.zip",
            content=(tmp_path / "export.zip").read_bytes(),
            headers={"Content-Type": "application/zip"},
        )
        assert started.status_code == 202, started.text
        job = started.json()["uuid"]
        before = _wait(http, job, lambda s: s["conversations_done"] >= 300)
        assert before["status"] == "running"
        # What waits on disk is ciphertext: no title, id or message of the export in it.
        (stored,) = spool.iterdir()
        sealed = stored.read_bytes()
        for plain in (b"Chat number 1", b"conversation_id", b"mapping", b"PK\x03\x04"):
            assert plain not in sealed
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = before["conversations_done"]
    assert killed_at < CONVERSATIONS
    with server(tmp_path, env, port):
        http = _client(base)
        done = _wait(http, job, lambda s: s["status"] in ("done", "failed"))
        assert done["status"] == "done", done
        assert done["imported"] == CONVERSATIONS == done["conversations_done"]
        # Six messages on the branch shown and a regenerated answer beside it, each.
        assert done["messages"] == CONVERSATIONS * 7
        # Resumed after the last committed batch: nothing was read twice as "already there".
        assert done["skipped_conversations"] == {}
        listed = http.get("/api/conversations?limit=1").json()
        archived = http.get("/api/conversations?limit=1&archived=true").json()
        assert listed["count"] + archived["count"] == CONVERSATIONS  # each exactly once
        assert list(spool.iterdir()) == []  # the upload went with the job's end
        again = http.post(
            "/api/imports?filename=export.zip",
            content=(tmp_path / "export.zip").read_bytes(),
            headers={"Content-Type": "application/zip"},
        )
        assert again.status_code == 202
        twice = _wait(http, again.json()["uuid"], lambda s: s["status"] in ("done", "failed"))
        assert (twice["imported"], twice["skipped_conversations"]) == (
            0,
            {"already imported": CONVERSATIONS},
        )
    print(f"killed after {killed_at} of {CONVERSATIONS} conversations; resumed to the end")
