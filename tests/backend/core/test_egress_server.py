"""Server-side request forgery through a user's own base URL, against a real uvicorn process.

The server allows personal connections (ALLOW_USER_CONNECTIONS=true). A recording HTTP server
on loopback (the sink) must never receive a request, whatever spelling of a local address a
user stores, and the answer a user gets must not reveal what was (not) listening there.
"""

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD, parse_sse
from egress_sink import Sink, start_sink
from fake_openai_server import free_port
from test_uvicorn_process import REPO, service_env, start_uvicorn, wait_until_up

pytestmark = pytest.mark.slow

KEY = "sk-user-secret-key-9876"


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    server = start_sink()
    yield server
    server.stop()


class Service:
    def __init__(self, base: str, process: subprocess.Popen[bytes]) -> None:
        self.base, self.process = base, process

    @contextmanager
    def user(self, name: str) -> Iterator[httpx.Client]:
        """A client signed in as a new user (bearer token: no CSRF token needed)."""
        with httpx.Client(base_url=self.base, timeout=30) as http:
            body = {"username": name, "email": f"{name}@example.com", "password": DEFAULT_PASSWORD}
            assert http.post("/api/auth/register", json=body).status_code == 201
            login = http.post(
                "/api/auth/login", json={"username": name, "password": DEFAULT_PASSWORD}
            )
            http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            http.cookies.clear()
            yield http


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("egress")
    env = {**service_env(tmp), "ALLOW_USER_CONNECTIONS": "true", "LLM_MAX_RETRIES": "1"}
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EGRESS_ALLOW_PRIVATE_NETWORKS"):
        env.pop(name, None)
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=env, check=True, capture_output=True)
    port = free_port()
    process = start_uvicorn(env, port)
    wait_until_up(f"http://127.0.0.1:{port}", process)
    yield Service(f"http://127.0.0.1:{port}", process)
    process.terminate()
    process.communicate(timeout=10)


def local_urls(port: int) -> list[str]:
    hosts = [
        "127.0.0.1",
        "[::1]",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "localhost",
        "169.254.169.254",
        "metadata.google.internal",
        "10.0.0.1",
    ]
    return [f"http://{host}:{port}/v1" for host in hosts] + [
        f"http://user:pw@127.0.0.1:{port}/v1",
        f"http://user:pw@api.example.com:{port}/v1",
    ]


def test_local_addresses_are_refused_when_stored(service: Service, sink: Sink) -> None:
    with service.user("storer") as http:
        for url in local_urls(sink.port):
            response = http.put("/api/settings", json={"openai_base_url": url})
            assert response.status_code == 422, (url, response.text)
            assert "detail" in response.json()
        assert http.get("/api/settings").json()["openai_base_url"] is None
    assert sink.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_name_resolving_to_loopback_is_refused_at_connection_time(
    service: Service, sink: Sink, stream: bool
) -> None:
    """The store-time check cannot know where a name resolves; the connection-time one does."""
    name = socket.gethostname()
    resolved = {info[4][0] for info in socket.getaddrinfo(name, sink.port)}
    assert resolved & {"127.0.0.1", "127.0.1.1", "::1"}, resolved  # precondition of this test
    with service.user(f"rebinder{int(stream)}") as http:
        url = f"http://{name}:{sink.port}/v1"
        saved = http.put("/api/settings", json={"openai_base_url": url, "openai_api_key": KEY})
        assert saved.status_code == 200, saved.text
        uuid = http.post("/api/conversations", json={}).json()["uuid"]
        headers = {"Accept": "text/event-stream"} if stream else {}
        answer = http.post(
            f"/api/conversations/{uuid}/messages", json={"content": "hello"}, headers=headers
        )
        if stream:
            event, data = parse_sse(answer.text)[-1]
            assert event == "error"
            detail = data["detail"]
        else:
            assert answer.status_code == 502, answer.text
            detail = answer.json()["detail"]
    assert sink.requests == []
    # One generic sentence: nothing about the port, a status or the reason.
    assert detail.startswith("Your model provider could not be used.")
    assert str(sink.port) not in detail and name not in detail


def test_the_refusal_is_logged_without_the_key(service: Service, sink: Sink) -> None:
    name = socket.gethostname()
    with service.user("logged") as http:
        url = f"http://{name}:{sink.port}/v1"
        http.put("/api/settings", json={"openai_base_url": url, "openai_api_key": KEY})
        uuid = http.post("/api/conversations", json={}).json()["uuid"]
        # The answer path without tools logs provider failures; the tools path is its own.
        http.patch(f"/api/conversations/{uuid}", json={"tools_enabled": False})
        http.post(f"/api/conversations/{uuid}/messages", json={"content": "a private prompt"})
    service.process.terminate()
    output = service.process.communicate(timeout=10)[0].decode()
    failures = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"llm_failed"' in line
    ]
    assert failures, output[-2000:]
    assert failures[-1]["provider_host"] == name.lower()
    assert failures[-1]["cause"] == "EgressRefused"
    assert failures[-1]["model"]
    assert KEY not in output and "a private prompt" not in output
    assert sink.requests == []


def test_the_sink_records_what_reaches_it() -> None:
    """The sink really records requests (so an empty list above means something)."""
    recorder = start_sink()
    try:
        httpx.post(f"http://127.0.0.1:{recorder.port}/x", json={"a": 1}, timeout=5)
        assert [r["path"] for r in recorder.requests] == ["/x"]
    finally:
        recorder.stop()
