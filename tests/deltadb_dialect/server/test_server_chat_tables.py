"""The chat app's own tables, created by its Alembic migrations, served as databases."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
from ddb_server_helpers import BACKENDS, ROOT, start_server, stop_server, store_url

pytestmark = pytest.mark.slow


def test_chat_app_tables_are_databases(tmp_path: Path) -> None:
    url = store_url(BACKENDS[0], tmp_path)
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    migrated = subprocess.run([str(ROOT / ".venv" / "bin" / "alembic"), "upgrade", "head"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    server = start_server(url, tmp_path / "log")
    try:
        token = httpx.post(server.base_url + "/api/login", json={"client_id": "ops"}).json()
        headers = {"Authorization": "Bearer " + token["token"]}
        databases = httpx.get(server.base_url + "/databases", headers=headers).json()["databases"]
        kinds = {d["name"]: d["kind"] for d in databases}
        for table in ("users", "conversations", "messages", "alembic_version"):
            assert kinds.get(table) == "table", (table, kinds)
        schema = httpx.get(server.base_url + "/schema/users", headers=headers).json()
        assert schema["properties"]["email"]["type"] == "string"
        assert "email" in schema["required"]

        # Writes go through SQL: the table's NOT NULL columns are enforced...
        incomplete = httpx.put(server.base_url + "/entity/users", headers=headers,
                               json={"1": {"username": "alice"}})
        assert incomplete.status_code == 400 and "error" in incomplete.json()
        # ...and a complete row is written and read back as a document.
        alice = {"username": "alice", "email": "alice@example.com", "hashed_password": "x",
                 "is_active": True, "is_admin": False,
                 "created_at": "2026-01-01T00:00:00+00:00",
                 "updated_at": "2026-01-01T00:00:00+00:00"}
        created = httpx.put(server.base_url + "/entity/users", headers=headers,
                            json={"1": alice})
        assert created.status_code == 200, created.text
        row = httpx.get(server.base_url + "/entity/users", params={"key": "1"},
                        headers=headers).json()
        assert row["id"] == 1 and row["email"] == "alice@example.com"
        duplicate = httpx.put(server.base_url + "/entity/users", headers=headers,
                              json={"2": {**alice}})
        assert duplicate.status_code == 409
    finally:
        stop_server(server)
