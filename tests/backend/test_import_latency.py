"""A large import against a real uvicorn: while it runs, another user's requests are answered
between its transactions instead of waiting for the whole import."""

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD
from live_server import live_service, service_env

CONVERSATIONS = 6_500  # about 0.9 MiB, as in the report that found the stall


def _signed_in(base: str, name: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=120)
    user = {"username": name, "email": f"{name}@example.com", "password": DEFAULT_PASSWORD}
    assert http.post("/api/auth/register", json=user).status_code == 201
    login = http.post("/api/auth/login", json={"username": name, "password": DEFAULT_PASSWORD})
    http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    return http


def _export() -> bytes:
    conversations = [
        {
            "uuid": f"c{i}",
            "title": f"Chat {i}",
            "messages": [{"role": "user", "content": "hello " * 11}],
        }
        for i in range(CONVERSATIONS)
    ]
    body = {"format": "openchat-export", "version": 1, "conversations": conversations}
    return json.dumps(body, separators=(",", ":")).encode()


@pytest.mark.slow
def test_other_users_are_served_during_a_large_import(tmp_path: Path) -> None:
    # IMPORT_BATCH_CONVERSATIONS in the environment (e.g. 100000: one transaction) compares.
    with live_service(tmp_path, env=service_env(tmp_path)) as base:
        alice, bob = _signed_in(base, "alice"), _signed_in(base, "bob")
        body = _export()
        assert 0.8 * 2**20 < len(body) < 2**20
        latencies: list[float] = []
        importing = threading.Event()

        def poll() -> None:
            importing.wait()
            while importing.is_set():
                started = time.perf_counter()
                assert bob.get("/api/conversations?limit=1").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.01)

        poller = threading.Thread(target=poll)
        poller.start()
        importing.set()
        started = time.perf_counter()
        answer = alice.post(
            "/api/import", content=body, headers={"Content-Type": "application/json"}
        )
        duration = time.perf_counter() - started
        importing.clear()
        poller.join()
    assert answer.status_code == 201 and answer.json()["imported"] == CONVERSATIONS
    worst = max(latencies)
    print(f"import {duration:.2f} s; other user's requests: {len(latencies)}, worst {worst:.3f} s")
    # One import transaction would hold every other request for (nearly) the whole import.
    assert len(latencies) >= 5
    assert worst < duration / 3, (worst, duration)
