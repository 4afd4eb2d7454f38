"""Provider clients stay bounded: a real uvicorn process's RSS (from /proc) across many
changes of a user's own API key, each followed by a question answered with that key."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD
from fake_openai_server import FakeOpenAIServer
from live_server import live_process, memory_kib, service_env

pytestmark = pytest.mark.slow

WARM_UP, KEY_CHANGES = 40, 400
# Each distinct key used to keep an SDK client with its own HTTP client and TLS context,
# about 0.8 MiB, forever: 400 changes grew the process by about 300 MiB.
MAX_GROWTH_MIB = 40


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


def test_many_key_changes_do_not_grow_the_process(
    tmp_path: Path, provider: FakeOpenAIServer
) -> None:
    env = {
        **service_env(tmp_path),
        "ALLOW_USER_CONNECTIONS": "true",
        "EGRESS_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",  # the fake provider is on loopback
        "LOG_LEVEL": "WARNING",
    }
    with live_process(tmp_path, env=env) as server:
        with httpx.Client(base_url=server.base, timeout=30) as http:
            body = {"username": "keys", "email": "k@example.com", "password": DEFAULT_PASSWORD}
            http.post("/api/auth/register", json=body)
            token = http.post(
                "/api/auth/login", json={"username": "keys", "password": DEFAULT_PASSWORD}
            ).json()["access_token"]
            http.cookies.clear()
            http.headers["Authorization"] = f"Bearer {token}"
            uuid = http.post("/api/conversations", json={}).json()["uuid"]
            http.patch(f"/api/conversations/{uuid}", json={"tools_enabled": False})

            def ask_with_a_new_key(index: int) -> None:
                key = {
                    "openai_api_key": f"sk-key-{index:06d}-abcdef",
                    "openai_base_url": provider.base_url,
                }
                assert http.put("/api/settings", json=key).status_code == 200
                answer = http.post(f"/api/conversations/{uuid}/messages", json={"content": "hi"})
                assert answer.status_code == 201, answer.text

            for index in range(WARM_UP):
                ask_with_a_new_key(index)
            before = memory_kib(server.pid, "VmRSS") / 1024
            for index in range(WARM_UP, WARM_UP + KEY_CHANGES):
                ask_with_a_new_key(index)
            after = memory_kib(server.pid, "VmRSS") / 1024
    print(f"RSS {before:.1f} MiB -> {after:.1f} MiB over {KEY_CHANGES} key changes")
    assert after - before < MAX_GROWTH_MIB, (before, after)
