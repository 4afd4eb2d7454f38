"""Turning zero-access on converts existing conversations in bounded batches; a server killed
with SIGKILL half-way resumes the conversion at the user's next sign-in, and nothing is lost,
doubled or left in plain text."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TEST_DB
from fake_openai_server import free_port
from live_server import REPO, make_run_limits, service_env
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.skipif(TEST_DB != "deltadb", reason="kills a process holding a store")

PASSWORD = "a long zero-access passphrase"
CONVERSATIONS, MESSAGES_EACH = 30, 10


@contextmanager
def server(workdir: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A uvicorn process as `make run` starts it; yields (base URL, process)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port)]
    log = (workdir / "uvicorn.log").open("ab")
    process = subprocess.Popen(
        [*command, *make_run_limits()], cwd=REPO, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, (workdir / "uvicorn.log").read_text()
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        log.close()


def export_file() -> dict[str, Any]:
    conversations = []
    for number in range(CONVERSATIONS):
        messages = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"plain-{number}-{i} words"}
            for i in range(MESSAGES_EACH)
        ]
        conversations.append(
            {"uuid": str(uuid.uuid4()), "title": f"plain-title-{number}", "messages": messages}
        )
    return {"format": "openchat-export", "version": 1, "conversations": conversations}


def stored(url: str) -> list[str]:
    """The raw content values (titles and messages) as the database holds them."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            titles = connection.execute(text("SELECT title FROM conversations")).scalars().all()
            texts = connection.execute(text("SELECT content FROM messages")).scalars().all()
    finally:
        engine.dispose()
    return [*titles, *texts]


def sign_in(http: httpx.Client) -> dict[str, str]:
    response = http.post("/api/auth/login", json={"username": "kim", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def everything_shown(http: httpx.Client, headers: dict[str, str]) -> list[tuple[str, list[str]]]:
    exported = http.get("/api/export", headers=headers).json()["conversations"]
    return sorted((c["title"], [m["content"] for m in c["messages"]]) for c in exported)


def test_a_conversion_killed_half_way_resumes_at_the_next_sign_in(tmp_path: Path) -> None:
    slow = service_env(tmp_path, ZERO_ACCESS_BATCH_ROWS="7", ZERO_ACCESS_BATCH_PAUSE_MS="100")
    url = slow["DATABASE_URL"]
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=slow, check=True, capture_output=True)
    with server(tmp_path, slow) as (base, process), httpx.Client(base_url=base, timeout=30) as http:
        body = {"username": "kim", "email": "kim@example.com", "password": PASSWORD}
        assert http.post("/api/auth/register", json=body).status_code == 201
        headers = sign_in(http)
        imported = http.post("/api/import", json=export_file(), headers=headers)
        assert imported.status_code == 201, imported.text
        before = everything_shown(http, headers)
        on = http.post("/api/privacy/on", json={"password": PASSWORD}, headers=headers)
        assert on.status_code == 200, on.text
        while (
            not http.get("/api/privacy", headers=headers).json()["cursor"].startswith("messages:")
        ):
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    values = stored(url)
    sealed = [value for value in values if value.startswith("zs1:")]
    assert 0 < len(sealed) < len(values), "the kill should land half-way"
    assert len(values) == CONVERSATIONS * (MESSAGES_EACH + 1)

    with (
        server(tmp_path, service_env(tmp_path)) as (base, _),
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        headers = sign_in(http)  # the sign-in unwraps the key and the conversion goes on
        deadline = time.monotonic() + 60
        while http.get("/api/privacy", headers=headers).json()["state"] != "on":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert everything_shown(http, headers) == before
    values = stored(url)
    assert len(values) == CONVERSATIONS * (MESSAGES_EACH + 1)
    assert all(value.startswith("zs1:") for value in values)
    assert not any("plain-" in value for value in values)
