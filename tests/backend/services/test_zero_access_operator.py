"""The curious operator: with the store, its master key, the sessions table and an admin
account, a zero-access user's message text, titles, tool arguments and snapshot names are
found nowhere; the same user, signed in, sees all of it.

A real uvicorn process writes the content (streamed answers, a tool call, a snapshot); the
operator then tries every admin route of the running service, the entity server over the
store with the admin key, the store's decrypted export, a SQLite copy built from it, raw SQL
through the dialect, the files themselves and the service's log.
"""

import json
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TEST_DB
from live_server import REPO, live_service, service_env
from sqlalchemy import create_engine, inspect, text

from backend.core import content_keys

pytestmark = pytest.mark.skipif(TEST_DB != "deltadb", reason="the operator's tools are deltadb's")

PASSWORD = "a long zero-access passphrase"
CANARIES = {
    "text": "canary-message-0c4f2e",
    "title": "canary-title-5ab81d",
    "tool": "canary-tool-argument-77e0",
    "snapshot": "canary-snapshot-3d9b",
}
ADMIN = {"username": "operator", "password": "the operator's admin password"}


def found_in(blob: str) -> list[str]:
    return [name for name, canary in CANARIES.items() if canary in blob]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(http: httpx.Client, username: str, password: str) -> dict[str, str]:
    response = http.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def write_content(http: httpx.Client) -> tuple[dict[str, str], str]:
    """A zero-access user writes every kind of content; returns their headers and chat."""
    made = http.post(
        "/api/auth/register",
        json={"username": "zed", "email": "zed@example.com", "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    zed = sign_in(http, "zed", PASSWORD)
    on = http.post("/api/privacy/on", json={"password": PASSWORD}, headers=zed)
    assert on.status_code == 200, on.text
    chat = http.post("/api/conversations", json={"title": CANARIES["title"]}, headers=zed)
    uuid = chat.json()["uuid"]
    streamed = http.post(
        f"/api/conversations/{uuid}/messages",
        json={"content": f"tell me about {CANARIES['text']}"},
        headers={**zed, "Accept": "text/event-stream"},
    )
    assert streamed.status_code == 200 and CANARIES["text"] in streamed.text
    tool = http.post(
        f"/api/conversations/{uuid}/messages",
        json={"content": f"search my conversations for {CANARIES['tool']}"},
        headers=zed,
    )
    assert tool.status_code == 201, tool.text
    assert tool.json()["tool_executions"][0]["tool_name"] == "search_conversations"
    snapshot = http.post(
        f"/api/conversations/{uuid}/snapshots", json={"name": CANARIES["snapshot"]}, headers=zed
    )
    assert snapshot.status_code == 201, snapshot.text
    return zed, uuid


def owner_sees_everything(http: httpx.Client, zed: dict[str, str], uuid: str) -> None:
    seen = [
        http.get(f"/api/conversations/{uuid}/messages", headers=zed).text,
        http.get("/api/conversations", headers=zed).text,
        http.get(f"/api/conversations/{uuid}/tool-executions", headers=zed).text,
        http.get(f"/api/conversations/{uuid}/snapshots", headers=zed).text,
        http.get("/api/export", headers=zed).text,
    ]
    assert sorted(set(found_in(" ".join(seen)))) == sorted(CANARIES)


def admin_get_routes(http: httpx.Client) -> list[str]:
    """Every GET route an admin has (from the service's own OpenAPI document)."""
    paths = http.get("/openapi.json").json()["paths"]
    return [path for path, item in paths.items() if "get" in item]


def fill(path: str, *, user_id: int, uuid: str) -> str:
    return (
        path.replace("{user_id}", str(user_id))
        .replace("{uuid}", uuid)
        .replace("{id}", str(user_id))
        .replace("{snapshot_uuid}", uuid)
    )


def admin_sees_nothing(http: httpx.Client, uuid: str) -> int:
    admin = sign_in(http, ADMIN["username"], ADMIN["password"])
    users = http.get("/api/admin/users", headers=admin).json()["data"]
    zed_row = next(u for u in users if u["username"] == "zed")
    assert zed_row["zero_access"] is True
    tried = 0
    for path in admin_get_routes(http):
        if "{" in path and not any(p in path for p in ("{user_id}", "{uuid}", "{id}")):
            continue
        response = http.get(fill(path, user_id=zed_row["id"], uuid=uuid), headers=admin)
        tried += 1
        assert found_in(response.text) == [], path
    return tried


def openapi_path_ok(http: httpx.Client) -> None:
    assert http.get("/openapi.json").status_code == 200


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], str]]:
    env = service_env(tmp_path, ADMIN_USERNAME=ADMIN["username"], ADMIN_PASSWORD=ADMIN["password"])
    yield tmp_path, env, env["DATABASE_URL"]


def test_the_operator_finds_no_zero_access_content_anywhere(
    store: tuple[Path, dict[str, str], str],
) -> None:
    workdir, env, url = store
    with live_service(workdir, env=env) as base, httpx.Client(base_url=base, timeout=30) as http:
        openapi_path_ok(http)
        zed, uuid = write_content(http)
        owner_sees_everything(http, zed, uuid)
        assert admin_sees_nothing(http, uuid) >= 10
    log = (workdir / "uvicorn.log").read_text(errors="replace")
    assert found_in(log) == []
    store_dir = Path(url.removeprefix("deltadb:///"))
    for path in store_dir.iterdir():
        assert found_in(path.read_bytes().decode("latin-1")) == [], path

    dump = workdir / "dump.jsonl"
    tools = [sys.executable, "-m", "deltadb_dialect"]
    exported = subprocess.run(
        [*tools, "export", "--store", url, "--out", str(dump)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    decrypted = dump.read_text()
    assert '"messages"' in decrypted and "zs1:" in decrypted  # it is the decrypted store
    assert found_in(decrypted) == []
    assert found_in(sqlite_copy(workdir, dump, env)) == []
    assert found_in(raw_sql(url)) == []
    assert found_in(entity_server(url, env)) == []
    sessions_unwrap_nothing(url)

    # The same user, signed in again, sees all of it.
    with live_service(workdir, env=env) as base, httpx.Client(base_url=base, timeout=30) as http:
        owner_sees_everything(http, sign_in(http, "zed", PASSWORD), uuid)


def sqlite_copy(workdir: Path, dump: Path, env: dict[str, str]) -> str:
    """The decrypted export imported into a plain SQLite file, every table read with sqlite3."""
    copy = workdir / "copy.db"
    copy_env = {**env, "DATABASE_URL": f"sqlite:///{copy}"}
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=copy_env, check=True, capture_output=True)
    imported = subprocess.run(
        [sys.executable, "-m", "deltadb_dialect", "import", "--store", f"sqlite:///{copy}"],
        input=_rows_only(dump),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr
    with sqlite3.connect(copy) as connection:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        rows = [connection.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables]
    everything = json.dumps(rows, default=str)
    assert "zs1:" in everything
    return everything


def _rows_only(dump: Path) -> str:
    # The copy's schema came from the migrations; only rows are imported into it.
    lines = [json.loads(line) for line in dump.read_text().splitlines() if line.strip()]
    return "\n".join(json.dumps(line) for line in lines if line.get("table") != "alembic_version")


def raw_sql(url: str) -> str:
    """Every row of every table through the dialect (the replica, decrypted), raw SQL."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            rows = [connection.execute(text(f'SELECT * FROM "{t}"')).all() for t in tables]
    finally:
        engine.dispose()
    return json.dumps([[list(r) for r in table] for table in rows], default=str)


def entity_server(url: str, env: dict[str, str]) -> str:
    """The DeltaDatabase-compatible entity server with the admin key: every entity read."""
    from fake_openai_server import free_port

    admin_key = secrets.token_urlsafe(24)
    port = free_port()
    server_env = {**env, "DELTADB_ADMIN_KEY": admin_key}
    command = [
        sys.executable,
        "-m",
        "deltadb_dialect",
        "serve",
        "--store",
        url,
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command, cwd=REPO, env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    seen: list[Any] = []
    try:
        base = f"http://127.0.0.1:{port}"
        headers = bearer(admin_key)
        _wait_for(base)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            databases = http.get("/databases").json()["databases"]
            for database in databases:
                name = database["name"]
                cursor = None
                while True:
                    params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                    page = http.get(f"/entities/{name}", params=params).json()
                    for key in page.get("keys", []):
                        seen.append(http.get(f"/entity/{name}", params={"key": key}).json())
                    cursor = page.get("next_cursor")
                    if not cursor:
                        break
    finally:
        process.terminate()
        process.wait(timeout=15)
    everything = json.dumps(seen)
    assert "zs1:" in everything and '"hashed_password"' in everything
    return everything


def _wait_for(base: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("entity server did not come up")


def sessions_unwrap_nothing(url: str) -> None:
    """What the sessions table holds (token digests) opens no session's key."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT s.token_hash, k.wrapped_key FROM session_content_keys k "
                    "JOIN auth_sessions s ON s.id = k.session_id"
                )
            ).all()
    finally:
        engine.dispose()
    assert rows
    import base64

    for token_hash, wrapped in rows:
        with pytest.raises(content_keys.WrongKey):
            content_keys.unwrap_for_session(token_hash, base64.b64decode(wrapped))
    assert os.environ.get("DELTADB_MASTER_KEY")  # the operator had the master key throughout
