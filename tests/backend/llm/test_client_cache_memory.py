"""Provider clients stay bounded: a real uvicorn process's RSS (from /proc) across many
changes of a user's own API key, each followed by a question answered with that key."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD
from fake_openai_server import FakeOpenAIServer, free_port
from test_uvicorn_process import REPO, service_env, start_uvicorn, wait_until_up

pytestmark = pytest.mark.slow

WARM_UP, KEY_CHANGES = 40, 400
# Each distinct key used to keep an SDK client with its own HTTP client and TLS context,
# about 0.8 MiB, forever: 400 changes grew the process by about 300 MiB.
MAX_GROWTH_MIB = 40


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc")


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
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=env, check=True, capture_output=True)
    port = free_port()
    process = start_uvicorn(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        with httpx.Client(base_url=base, timeout=30) as http:
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
            before = rss_mib(process.pid)
            for index in range(WARM_UP, WARM_UP + KEY_CHANGES):
                ask_with_a_new_key(index)
            after = rss_mib(process.pid)
    finally:
        process.terminate()
        process.communicate(timeout=10)
    print(f"RSS {before:.1f} MiB -> {after:.1f} MiB over {KEY_CHANGES} key changes")
    assert after - before < MAX_GROWTH_MIB, (before, after)
