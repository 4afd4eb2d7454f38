"""How the tests start the SDK-built `tools_server.py`, over stdio and HTTP."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("tools_server.py")


def stdio_entry() -> dict:
    return {"command": sys.executable, "args": [str(SERVER)]}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    process.kill()
    pytest.fail("the HTTP MCP test server did not start")


@contextmanager
def http_tools_server() -> Iterator[str]:
    """The tools server on a loopback port, over Streamable HTTP; yields its URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_port(process, port)
    yield f"http://127.0.0.1:{port}/mcp"
    process.terminate()
    process.wait(timeout=10)


OAUTH_SERVER = Path(__file__).with_name("oauth_tools_server.py")


@contextmanager
def oauth_tools_server(*, token_seconds: int) -> Iterator[tuple[str, str]]:
    """The OAuth-protected tools server on a loopback port, its authorization server on
    another loopback address; yields the MCP endpoint's URL and the issuer's."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(OAUTH_SERVER), "--port", str(port), "--token-seconds",
         str(token_seconds)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_port(process, port)
    yield f"http://127.0.0.1:{port}/mcp", f"http://127.0.0.2:{port}"
    process.terminate()
    process.wait(timeout=10)
