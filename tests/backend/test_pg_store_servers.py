"""Three chat servers (uvicorn processes, each its own "host" replica directory) on one
DeltaDB store kept in PostgreSQL: a user registers through one, signs in through another,
chats through the third and lists through the first; PostgreSQL holds no plaintext."""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD, parse_sse
from fake_openai_server import free_port
from live_server import REPO, make_run_limits

from tests.pg_cluster import PostgresCluster

CANARY = {
    "username": "canaryuserqx",
    "email": "canary.mail.qx@example.org",
    "message": "canary question about the zebra qx77",
    "title": "canary title qx88",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as started:
        yield started


def _env(replica: Path, pg: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": f"deltadb:///{replica}?storage={pg}",
            "PYTHONPATH": str(REPO), "LOG_LEVEL": "WARNING"}


@contextmanager
def _servers(tmp_path: Path, pg: str, count: int) -> Iterator[list[str]]:
    """Migrate once, then start ``count`` uvicorn processes together (as `make run` does),
    each with its own replica directory; yield their base URLs."""
    envs = [_env(tmp_path / f"host{i}", pg) for i in range(count)]
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO, env=envs[0],
                   check=True, capture_output=True, timeout=300)
    ports = [free_port() for _ in envs]
    processes = [subprocess.Popen([sys.executable, "-m", "uvicorn", "backend.main:app",
                                   "--port", str(port), *make_run_limits()], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for env, port in zip(envs, ports, strict=True)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base, process in zip(bases, processes, strict=True):
            _wait_until_up(base, process)
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def _wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180  # a loaded machine starts Python slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.communicate()[1].decode())
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{base} did not come up")


def _words_in(paths: list[Path], words: list[str]) -> set[str]:
    """The words found whole in the files (``messages`` in ``client_min_messages`` is not)."""
    patterns = {word: re.compile(rb"\b" + re.escape(word.encode()) + rb"\b") for word in words}
    found: set[str] = set()
    for path in paths:
        data = path.read_bytes()
        found |= {word for word, pattern in patterns.items() if pattern.search(data)}
    return found


def _table_names() -> list[str]:
    from backend.models import Base

    return sorted(Base.metadata.tables)


@pytest.mark.slow
def test_three_servers_share_one_store_and_postgresql_sees_only_ciphertext(
        tmp_path: Path, cluster: PostgresCluster) -> None:
    pg = f"postgresql://openchat@127.0.0.1:{cluster.port}/openchat"
    tables = _table_names()
    data_files = lambda: [p for p in cluster.data.rglob("*") if p.is_file()]  # noqa: E731
    before = _words_in(data_files(), tables)  # names PostgreSQL's own catalogs already use
    with _servers(tmp_path, pg, 3) as bases, httpx.Client(timeout=30) as http:
        user = {"username": CANARY["username"], "email": CANARY["email"],
                "password": DEFAULT_PASSWORD}
        assert http.post(f"{bases[0]}/api/auth/register", json=user).status_code == 201
        login = http.post(f"{bases[1]}/api/auth/login",
                          json={"username": CANARY["username"],
                                "password": DEFAULT_PASSWORD})
        assert login.status_code == 200, login.text
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        created = http.post(f"{bases[2]}/api/conversations",
                            json={"title": CANARY["title"]}, headers=csrf)
        assert created.status_code == 201, created.text
        uuid = created.json()["uuid"]
        streamed = http.post(f"{bases[2]}/api/conversations/{uuid}/messages",
                             json={"content": CANARY["message"]},
                             headers={**csrf, "Accept": "text/event-stream"})
        events = parse_sse(streamed.text)
        assert events[0][0] == "start" and events[-1][0] == "done"
        listed = http.get(f"{bases[0]}/api/conversations").json()
        assert [c["title"] for c in listed["data"]] == [CANARY["title"]]
        messages = http.get(f"{bases[0]}/api/conversations/{uuid}/messages").json()
        contents = [m["content"] for m in messages["data"]]
        assert contents[0] == CANARY["message"] and len(contents) == 2
        assert http.get(f"{bases[1]}/api/auth/me").json()["username"] == CANARY["username"]
    subprocess.run([str(cluster.bin / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U",
                    "openchat", "-d", "openchat", "-c", "CHECKPOINT"],
                   check=True, capture_output=True)
    dump = subprocess.run([str(cluster.bin / "pg_dump"), "-h", "127.0.0.1", "-p",
                           str(cluster.port), "-U", "openchat", "openchat"], check=True,
                          capture_output=True, text=True).stdout
    assert "deltadb_records" in dump
    canaries = list(CANARY.values())
    for word in canaries + tables:
        assert not re.search(rf"\b{re.escape(word)}\b", dump), word
    assert _words_in(data_files(), canaries) == set()
    assert _words_in(data_files(), tables) <= before



@pytest.mark.slow
def test_an_unreachable_storage_stops_the_server_with_one_sentence(tmp_path: Path) -> None:
    pg = f"postgresql://openchat:secret-pw@127.0.0.1:{free_port()}/openchat"
    env = {**_env(tmp_path / "host", pg), "LOG_LEVEL": "INFO"}
    done = subprocess.run([sys.executable, "-m", "uvicorn", "backend.main:app", "--port",
                           str(free_port())], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "cannot reach PostgreSQL at openchat@127.0.0.1:" in output
    assert "Traceback" not in output and "secret-pw" not in output
