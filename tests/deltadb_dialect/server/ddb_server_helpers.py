"""Helpers and fixtures for the entity server's tests (conftest.py re-exports the fixtures).

Every API test runs on each available backend: ``deltadb://`` (the encrypted store) when the
dialect works here, and ``sqlite:///`` (the same SQL semantics) always.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[3]
# One master key for this suite's stores. It is put in the environment only around each test
# (the autouse fixture below) and handed to subprocesses explicitly, never set process-wide:
# other suites test what happens without a key.
MASTER_KEY = os.environ.get("DELTADB_MASTER_KEY") or secrets.token_hex(32)

ADMIN_KEY = "test-admin-key-" + "x" * 24


def _deltadb_available() -> bool:
    saved = os.environ.get("DELTADB_MASTER_KEY")
    os.environ["DELTADB_MASTER_KEY"] = MASTER_KEY
    try:
        import sqlalchemy

        probe_dir = Path(tempfile.gettempdir()) / f"deltadb-probe-{secrets.token_hex(4)}"
        engine = sqlalchemy.create_engine(f"deltadb:///{probe_dir}")
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
        engine.dispose()
        return True
    except Exception:
        return False
    finally:
        if saved is None:
            os.environ.pop("DELTADB_MASTER_KEY", None)
        else:
            os.environ["DELTADB_MASTER_KEY"] = saved


BACKENDS = ["deltadb", "sqlite"] if _deltadb_available() else ["sqlite"]


def store_url(backend: str, directory: Path) -> str:
    if backend == "deltadb":
        return f"deltadb:///{directory}/store"
    return f"sqlite:///{directory}/store.db"


@pytest.fixture(autouse=True)
def master_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DELTADB_MASTER_KEY", MASTER_KEY)
    return MASTER_KEY


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine_url(backend: str, tmp_path: Path) -> str:
    return store_url(backend, tmp_path)


@dataclass
class Api:
    """A TestClient with helpers for logging in."""

    client: TestClient

    def login(self, **body: str) -> dict[str, str]:
        response = self.client.post("/api/login", json=body)
        assert response.status_code == 200, response.text
        return {"Authorization": "Bearer " + response.json()["token"]}

    def admin(self) -> dict[str, str]:
        return self.login(key=ADMIN_KEY)

    def key_headers(self, *permissions: str) -> dict[str, str]:
        created = self.client.post("/api/keys", headers=self.admin(),
                                   json={"name": "k-" + "-".join(permissions),
                                         "permissions": list(permissions)})
        assert created.status_code == 201, created.text
        return self.login(key=created.json()["key"])


@pytest.fixture
def make_api(engine_url: str) -> Iterator[Callable[..., Api]]:
    """Build an app over this test's store; production mode (admin key) unless told otherwise."""
    clients: list[TestClient] = []

    def make(admin_key: str | None = ADMIN_KEY, **options: object) -> Api:
        from deltadb_dialect.server import create_app

        options.setdefault("heartbeat_seconds", 0.5)
        if admin_key is None:
            options.setdefault("allow_client_id_login", True)
        # A loopback host name: development mode refuses any other Host.
        client = TestClient(create_app(engine_url, admin_key=admin_key, **options),
                            base_url="http://localhost")
        client.__enter__()
        clients.append(client)
        return Api(client)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


@pytest.fixture
def dev_api(make_api: Callable[..., Api]) -> Api:
    return make_api(admin_key=None)


def run_cli(*args: str, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "DELTADB_MASTER_KEY": MASTER_KEY,
                   **(env or {})}
    if env is None:
        environment.pop("DELTADB_ADMIN_KEY", None)
    return subprocess.run([sys.executable, "-m", "deltadb_dialect", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=environment, input=stdin)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    store: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(store: str, log_path: Path, admin_key: str | None = None,
                 extra: tuple[str, ...] = (), key_file: Path | None = None,
                 client_id_logins: bool = True,
                 env_extra: dict[str, str] | None = None) -> LiveServer:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DELTADB_MASTER_KEY": MASTER_KEY}
    env.pop("DELTADB_ADMIN_KEY", None)
    env.update(env_extra or {})
    if key_file is not None:  # the master key comes from --key-file only
        env.pop("DELTADB_MASTER_KEY", None)
        extra = (*extra, "--key-file", str(key_file))
    if admin_key:
        env["DELTADB_ADMIN_KEY"] = admin_key
    elif client_id_logins:  # DeltaDatabase's development clients log in by client id
        extra = ("--allow-client-id-login", *extra)
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "deltadb_dialect", "serve", "--store", store,
         "--port", str(port), "--log-level", "warning", *extra],
        cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited:\n" + log_path.read_text(errors="replace"))
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=1):
                return LiveServer(base_url, process, log_path, store)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start:\n" + log_path.read_text(errors="replace"))


def stop_server(server: LiveServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real uvicorn server in development mode on a free loopback port (default backend)."""
    directory = tmp_path_factory.mktemp("live")
    server = start_server(store_url(BACKENDS[0], directory), directory / "server.log")
    yield server
    stop_server(server)
