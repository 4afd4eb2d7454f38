"""``serve``, ``export`` and ``import``; durability of acknowledged writes across kill -9."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ddb_server_helpers import (
    BACKENDS,
    LiveServer,
    run_cli,
    start_server,
    stop_server,
    store_url,
)


def login(base_url: str, **body: str) -> dict[str, str]:
    response = httpx.post(base_url + "/api/login", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": "Bearer " + response.json()["token"]}


def test_serve_is_a_subcommand() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for option in ("--store", "--host", "--port", "--client-ttl", "--key-file"):
        assert option in result.stdout


def test_development_mode_refuses_non_loopback_hosts(tmp_path: Path) -> None:
    result = run_cli("serve", "--store", f"sqlite:///{tmp_path}/s.db", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "development mode" in result.stderr and "DELTADB_ADMIN_KEY" in result.stderr


def test_development_mode_says_so_at_start(live_server: LiveServer) -> None:
    assert "DEVELOPMENT MODE" in live_server.log()
    assert httpx.post(live_server.base_url + "/api/login",
                      json={"client_id": "x"}).status_code == 200


def test_production_mode_with_admin_key_and_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    assert run_cli("keygen", "--out", str(key_file)).returncode == 0
    (tmp_path / "store").mkdir()
    server = start_server(str(tmp_path / "store"), tmp_path / "log", key_file=key_file,
                          admin_key="prod-admin-key-1234567890", extra=("--client-ttl", "1h"))
    try:
        assert "DEVELOPMENT MODE" not in server.log()
        assert httpx.post(server.base_url + "/api/login",
                          json={"client_id": "x"}).status_code == 401
        body = httpx.post(server.base_url + "/api/login",
                          json={"key": "prod-admin-key-1234567890"}).json()
        assert body["client_id"] == "admin"
        assert httpx.get(server.base_url + "/admin/workers").status_code == 401
        headers = {"Authorization": "Bearer " + body["token"]}
        expires = httpx.get(server.base_url + "/api/me", headers=headers).json()["expires_at"]
        assert expires == body["expires_at"]
        put = httpx.put(server.base_url + "/entity/db", json={"k": [1]}, headers=headers)
        assert put.status_code == 200
    finally:
        stop_server(server)
    # The store is encrypted under that key: the environment's key does not open it.
    wrong = run_cli("export", "--store", str(tmp_path / "store"))
    assert wrong.returncode != 0
    right = run_cli("export", "--store", str(tmp_path / "store"), "--key-file", str(key_file))
    assert right.returncode == 0 and '"key":"k"' in right.stdout


def test_several_worker_processes_register(tmp_path: Path) -> None:
    server = start_server(store_url(BACKENDS[0], tmp_path), tmp_path / "log",
                          extra=("--workers", "2"))
    try:
        headers = login(server.base_url, client_id="ops")
        deadline = time.monotonic() + 30
        workers: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            workers = httpx.get(server.base_url + "/admin/workers", headers=headers).json()
            if len(workers) == 2:
                break
            time.sleep(0.3)
        assert len(workers) == 2 and {w["status"] for w in workers} == {"Available"}
        assert len({w["pid"] for w in workers}) == 2
        # A token issued by one process is honoured by the other (tokens live in the store).
        for _ in range(6):
            assert httpx.get(server.base_url + "/api/me", headers=headers).status_code == 200
    finally:
        stop_server(server)


def _seed_store(url: str) -> None:
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from deltadb_dialect.server import create_app

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE posts (id INTEGER PRIMARY KEY, "
                             "user_id INTEGER NOT NULL REFERENCES users(id), body TEXT)")
    engine.dispose()
    with TestClient(create_app(url, admin_key=None, catalog_ttl=0.0, allow_client_id_login=True),
                    base_url="http://localhost") as client:
        headers = {"Authorization": "Bearer " + client.post(
            "/api/login", json={"client_id": "t"}).json()["token"]}
        client.put("/schema/chatdb", json={"type": "object"}, headers=headers)
        client.put("/entity/chatdb", json={"s1": {"m": [1, "é"]}, "s2": {}}, headers=headers)
        client.put("/entity/users", json={"1": {"email": "a@x"}}, headers=headers)
        client.put("/entity/posts", json={"9": {"user_id": 1, "body": "hi"}}, headers=headers)


def test_export_then_import_round_trip(tmp_path: Path) -> None:
    source = store_url(BACKENDS[0], tmp_path / "a")
    (tmp_path / "a").mkdir()
    _seed_store(source)
    out = tmp_path / "export.jsonl"
    result = run_cli("export", "--store", source, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "DECRYPTED" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {"schema_id": "chatdb", "schema": {"type": "object"}}
    entities = [(d["database"], d["key"], d["document"]) for d in lines[1:]]
    assert entities == [("users", "1", {"id": 1, "email": "a@x"}),
                        ("posts", "9", {"id": 9, "user_id": 1, "body": "hi"}),
                        ("chatdb", "s1", {"m": [1, "é"]}), ("chatdb", "s2", {})]
    stdout_export = run_cli("export", "--store", source)
    assert stdout_export.stdout == out.read_text()

    (tmp_path / "b").mkdir()
    target = store_url(BACKENDS[0], tmp_path / "b")
    import sqlalchemy as sa

    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE posts (id INTEGER PRIMARY KEY, "
                             "user_id INTEGER NOT NULL REFERENCES users(id), body TEXT)")
    engine.dispose()
    imported = run_cli("import", "--store", target, str(out))
    assert imported.returncode == 0, imported.stderr
    assert "imported 4 entities and 1 schemas" in imported.stderr
    assert run_cli("export", "--store", target).stdout == out.read_text()
    piped = run_cli("import", "--store", target, stdin=out.read_text())  # idempotent, from stdin
    assert piped.returncode == 0, piped.stderr


def test_import_refuses_bad_lines(tmp_path: Path) -> None:
    target = store_url(BACKENDS[0], tmp_path)
    bad = run_cli("import", "--store", target, stdin='{"database": "a/b", "key": "k", '
                  '"document": 1}\n')
    assert bad.returncode == 1 and "database name" in bad.stderr
    worse = run_cli("import", "--store", target, stdin="not json\n")
    assert worse.returncode == 1 and "line 1" in worse.stderr


@pytest.mark.slow
def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    """Writers PUT while the server is killed with SIGKILL; every 200 must be on disk."""
    store = store_url(BACKENDS[0], tmp_path)
    server = start_server(store, tmp_path / "log1")
    headers = login(server.base_url, client_id="crash-test")
    acknowledged: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            i = 0
            while not stop.is_set():
                key, doc = f"w{n}-{i}", {"writer": n, "i": i, "pad": "x" * 200}
                try:
                    response = client.put("/entity/crash", json={key: doc})
                except httpx.HTTPError:
                    return  # the server died mid-request: that write was never acknowledged
                if response.status_code == 200:
                    with lock:
                        acknowledged[key] = doc
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    assert len(acknowledged) > 20

    restarted = start_server(store, tmp_path / "log2")
    try:
        new_headers = login(restarted.base_url, client_id="after-crash")
        with httpx.Client(base_url=restarted.base_url, headers=new_headers) as client:
            for key, doc in acknowledged.items():
                response = client.get("/entity/crash", params={"key": key})
                assert response.status_code == 200, key
                assert response.json() == doc
            # The old server's row is now stale; the new one is Available.
            workers = client.get("/admin/workers").json()
            assert any(w["status"] == "Available" for w in workers)
    finally:
        stop_server(restarted)
