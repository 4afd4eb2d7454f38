"""Slow clients against a real uvicorn started with `make run`'s options: half-open connections
(headers never finished, or nothing sent, or a body that stops) are closed within the
deadlines, and the server keeps answering others meanwhile."""

import socket
import time
from pathlib import Path

import httpx
import pytest
from live_server import live_service, service_env

HEADER_TIMEOUT, BODY_TIMEOUT = 2.0, 2.0
HALF_OPEN = 300


def _open(port: int, first_bytes: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.5)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> str:
    workdir = tmp_path_factory.mktemp("slow-clients")
    env = service_env(
        workdir,
        HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        HTTP_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
    )
    with live_service(workdir, env=env) as base:
        yield base


@pytest.mark.slow
def test_half_open_connections_are_closed_within_the_header_deadline(service: str) -> None:
    port = int(service.rsplit(":", 1)[1])
    # Slowloris: a request line and part of the headers, then a header line every 0.5 s.
    partial = [_open(port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n") for _ in range(HALF_OPEN)]
    silent = [_open(port, b"") for _ in range(50)]
    started = time.monotonic()
    while time.monotonic() - started < HEADER_TIMEOUT - 0.5:
        for sock in partial[:20]:
            sock.sendall(b"X-Slow: 1\r\n")
        time.sleep(0.5)
    # Others are served while the slow connections are held.
    assert httpx.get(f"{service}/api/health", timeout=5).status_code == 200
    time.sleep(HEADER_TIMEOUT + 1.0 - (time.monotonic() - started))
    still_open = [sock for sock in partial + silent if not _closed_by_server(sock)]
    for sock in partial + silent:
        sock.close()
    assert still_open == [], f"{len(still_open)} of {HALF_OPEN + 50} connections still open"


@pytest.mark.slow
def test_a_body_that_stops_is_closed_within_the_body_deadline(service: str) -> None:
    port = int(service.rsplit(":", 1)[1])
    head = (
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"username":'
    )
    sock = _open(port, head)
    started = time.monotonic()
    sock.settimeout(BODY_TIMEOUT + 5)
    try:
        answer = sock.recv(4096)
    except ConnectionResetError:
        answer = b""
    waited = time.monotonic() - started
    sock.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer
    assert BODY_TIMEOUT - 0.5 < waited < BODY_TIMEOUT + 2, waited


@pytest.mark.slow
def test_a_complete_request_on_a_slow_line_is_still_served(service: str) -> None:
    port = int(service.rsplit(":", 1)[1])
    sock = _open(port, b"GET /api/health HTTP/1.1\r\n")
    time.sleep(HEADER_TIMEOUT / 2)
    sock.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.close()


def test_the_deadlines_are_read_from_the_environment_with_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    from live_server import REPO

    env = service_env(tmp_path, HTTP_HEADER_TIMEOUT_SECONDS="soon")
    result = subprocess.run(
        [sys.executable, "-c", "import backend.http_protocol"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "HTTP_HEADER_TIMEOUT_SECONDS must be a number of seconds between 0 and 3600, not 'soon'"
    ]
