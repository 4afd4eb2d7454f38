"""Answers belong to the server: two uvicorn processes on one store (as two workers would be).

The question is asked on one process and the asker leaves mid-answer; a follower on the
other process resumes from the characters it already has (`Last-Event-ID`), sees the rest
live, and the answer is stored exactly once. Stop, asked on either process, stores what was
written as a stopped answer.
"""

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD, parse_sse
from conftest import TEST_DB
from fake_openai_server import free_port
from test_uvicorn_process import REPO, start_uvicorn, wait_until_up

SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    tmp = tmp_path_factory.mktemp("two-workers")
    url = f"sqlite:///{tmp}/app.db" if TEST_DB == "sqlite" else f"deltadb:///{tmp}/app"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PYTHONPATH": str(REPO),
        "LOG_LEVEL": "WARNING",
        "MOCK_OPENAI_DELAY_MS": "40",  # the built-in model writes a word every 40 ms
    }
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=env, check=True, capture_output=True)
    ports = [free_port(), free_port()]
    processes = [start_uvicorn(env, port) for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base, process in zip(bases, processes, strict=True):
            wait_until_up(base, process)
        yield bases
    finally:
        for process in processes:
            process.terminate()
            process.communicate(timeout=15)


def _signed_in(base: str, name: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=30)
    user = {"username": name, "email": f"{name}@example.com", "password": DEFAULT_PASSWORD}
    http.post("/api/auth/register", json=user)
    login = http.post("/api/auth/login", json={"username": name, "password": DEFAULT_PASSWORD})
    assert login.status_code == 200, login.text
    http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return http


def _leave_after_deltas(http: httpx.Client, uuid: str, question: str, deltas: int) -> str:
    """Ask, read a few deltas, then drop the connection; what was received."""
    received = ""
    with http.stream(
        "POST", f"/api/conversations/{uuid}/messages", json={"content": question}, headers=SSE
    ) as response:
        assert response.status_code == 200
        seen = 0
        for line in response.iter_lines():
            if line.startswith("data: ") and '"content"' in line and "user_message" not in line:
                received += httpx.Response(200, content=line[6:]).json()["content"]
                seen += 1
                if seen == deltas:
                    break
    return received


LONG_QUESTION = " ".join(f"word{i}" for i in range(60))


@pytest.mark.slow
def test_an_answer_left_mid_way_completes_and_is_followed_from_another_worker(
    two_servers: list[str],
) -> None:
    asker, watcher = _signed_in(two_servers[0], "asker"), _signed_in(two_servers[1], "asker")
    uuid = asker.post("/api/conversations", json={}).json()["uuid"]
    received = _leave_after_deltas(asker, uuid, LONG_QUESTION, deltas=5)
    assert received
    # Another device, served by the other process, resumes where the first one was.
    follow = watcher.get(
        f"/api/conversations/{uuid}/answer", headers={"Last-Event-ID": str(len(received))}
    )
    assert follow.status_code == 200, follow.text
    events = parse_sse(follow.text)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and names.count("delta") >= 2, names
    assert events[0][1]["user_message"]["content"] == LONG_QUESTION
    rest = "".join(data["content"] for name, data in events if name == "delta")
    answer = events[-1][1]["assistant_message"]
    assert received + rest == answer["content"]
    stored = asker.get(f"/api/conversations/{uuid}/messages").json()["data"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == answer["content"] and stored[1]["uuid"] == answer["uuid"]
    # Once stored there is nothing left to follow.
    assert watcher.get(f"/api/conversations/{uuid}/answer").status_code == 404


@pytest.mark.slow
def test_stop_from_another_worker_stores_what_was_written(two_servers: list[str]) -> None:
    asker, watcher = _signed_in(two_servers[0], "stopper"), _signed_in(two_servers[1], "stopper")
    uuid = asker.post("/api/conversations", json={}).json()["uuid"]
    _leave_after_deltas(asker, uuid, LONG_QUESTION, deltas=3)
    busy = asker.post(f"/api/conversations/{uuid}/messages", json={"content": "and another"})
    assert busy.status_code == 409 and "still being written" in busy.json()["detail"]
    assert watcher.post(f"/api/conversations/{uuid}/answer/stop").status_code == 202
    follow = watcher.get(f"/api/conversations/{uuid}/answer")
    if follow.status_code == 200:  # still stopping: the follower sees it end
        assert parse_sse(follow.text)[-1][0] == "done"
    stored = asker.get(f"/api/conversations/{uuid}/messages").json()["data"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["response"]["finish_reason"] == "stopped"
    assert 0 < len(stored[1]["content"]) < len(LONG_QUESTION)
    # The conversation takes questions again, and other people cannot follow or stop it.
    stranger = _signed_in(two_servers[1], "stranger")
    assert stranger.get(f"/api/conversations/{uuid}/answer").status_code == 404
    assert stranger.post(f"/api/conversations/{uuid}/answer/stop").status_code == 404
    again = asker.post(f"/api/conversations/{uuid}/messages", json={"content": "short"})
    assert again.status_code == 201
