"""Archiving idle conversations: admin endpoint, CLI with dry run, hidden but searchable."""

import subprocess
import sys
from datetime import timedelta

from chat_factories import create_conversation, create_user, send_message
from fastapi.testclient import TestClient
from sqlalchemy import update

from backend.core.db import REPO_ROOT, SessionLocal
from backend.models import Conversation, utcnow


def _age(uuid: str, days: int) -> None:
    with SessionLocal() as session:
        session.execute(
            update(Conversation)
            .where(Conversation.uuid == uuid)
            .values(updated_at=utcnow() - timedelta(days=days))
        )
        session.commit()


def test_admin_archives_idle_conversations(client: TestClient) -> None:
    alice, admin = create_user(), create_user(is_admin=True)
    old = create_conversation(client, alice, title="Old trip plans")
    send_message(client, alice, old["uuid"], "pack the tent")
    fresh = create_conversation(client, alice, title="Fresh")
    _age(old["uuid"], 40)
    assert (
        client.post("/api/admin/archive-idle", json={"days": 30}, headers=alice.headers).status_code
        == 403
    )
    dry = client.post(
        "/api/admin/archive-idle", json={"days": 30, "dry_run": True}, headers=admin.headers
    ).json()
    assert dry["dry_run"] is True and [c["uuid"] for c in dry["conversations"]] == [old["uuid"]]
    listed = client.get("/api/conversations", headers=alice.headers).json()
    assert {c["uuid"] for c in listed["data"]} == {old["uuid"], fresh["uuid"]}
    done = client.post("/api/admin/archive-idle", json={"days": 30}, headers=admin.headers).json()
    assert done["count"] == 1
    sidebar = client.get("/api/conversations", headers=alice.headers).json()["data"]
    assert [c["uuid"] for c in sidebar] == [fresh["uuid"]]
    archived = client.get("/api/conversations?archived=true", headers=alice.headers).json()["data"]
    assert [c["uuid"] for c in archived] == [old["uuid"]]
    found = client.get("/api/search?q=tent", headers=alice.headers).json()["data"]
    assert found and found[0]["archived"] is True
    again = client.post("/api/admin/archive-idle", json={"days": 30}, headers=admin.headers).json()
    assert again["count"] == 0
    restored = client.patch(
        f"/api/conversations/{old['uuid']}", json={"archived": False}, headers=alice.headers
    )
    assert restored.json()["archived"] is False
    for body in ({"days": 0}, {"days": "x"}, {}, {"days": 3, "extra": 1}):
        assert (
            client.post("/api/admin/archive-idle", json=body, headers=admin.headers).status_code
            == 422
        )


def test_cli_archive_idle_with_dry_run(client: TestClient) -> None:
    alice = create_user()
    old = create_conversation(client, alice, title="Ancient")
    _age(old["uuid"], 10)

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "backend.cli", "archive-idle", *args]
        return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    dry = run("--days", "7", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert old["uuid"] in dry.stdout and "would be archived (dry run)" in dry.stdout
    assert (
        client.get(f"/api/conversations/{old['uuid']}", headers=alice.headers).json()["archived"]
        is False
    )
    real = run("--days", "7")
    assert real.returncode == 0 and "1 conversation(s) idle for 7+ days archived." in real.stdout
    assert (
        client.get(f"/api/conversations/{old['uuid']}", headers=alice.headers).json()["archived"]
        is True
    )
    assert run("--days", "0").returncode != 0
