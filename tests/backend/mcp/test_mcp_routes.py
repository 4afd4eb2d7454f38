"""MCP tools through the API: the admin configures a real server, the model calls its tools
through the mock provider's tool-calling path, the user approves, edits or rejects, and
everything lands in the audit log."""

import json
import time
from typing import Any

import pytest
from chat_factories import ChatUser, create_conversation, create_user, send_message
from fastapi.testclient import TestClient
from mcp_test_servers import stdio_entry
from sqlalchemy import select

from backend.mcp import runtime

BASE = "/api/admin/mcp-servers"


def _add(client: TestClient, admin: ChatUser, **body: Any) -> dict:
    body = {"name": "tests", "config": stdio_entry()} | body
    response = client.post(BASE, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()


def _wait_healthy(client: TestClient, admin: ChatUser, name: str = "tests") -> dict:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        servers = client.get(BASE, headers=admin.headers).json()["data"]
        server = next(s for s in servers if s["name"] == name)
        if server["healthy"] and server["tools"]:
            return server
        time.sleep(0.2)
    pytest.fail(f"the MCP server never became healthy: {server}")


@pytest.fixture
def admin() -> ChatUser:
    return create_user(is_admin=True)


def test_admin_adds_a_server_whose_secrets_are_never_shown_again(
    client: TestClient, admin: ChatUser
) -> None:
    entry = stdio_entry() | {"env": {"SERVICE_TOKEN": "sekrit-token-value"}}
    created = _add(client, admin, config=entry, tool_policies={"echo": "auto"})
    assert created["env_keys"] == ["SERVICE_TOKEN"]
    server = _wait_healthy(client, admin)
    listing = client.get(BASE, headers=admin.headers)
    assert "sekrit-token-value" not in listing.text and "sekrit-token-value" not in str(created)
    tools = {t["name"]: t for t in server["tools"]}
    assert tools["echo"]["qualified_name"] == "tests__echo"
    assert tools["echo"]["policy"] == "auto" and tools["slow"]["policy"] == "ask"
    probe = client.post(f"{BASE}/tests/test", headers=admin.headers).json()
    assert probe["ok"] is True and "echo" in {t["name"] for t in probe["tools"]}


def test_users_cannot_administer_servers(client: TestClient) -> None:
    user = create_user()
    assert client.get(BASE, headers=user.headers).status_code == 403
    body = {"name": "x", "config": {"command": "/bin/sh", "args": ["-c", "id"]}}
    assert client.post(BASE, json=body, headers=user.headers).status_code == 403


def test_bad_configurations_are_refused_with_a_sentence(
    client: TestClient, admin: ChatUser
) -> None:
    bad = client.post(BASE, json={"name": "x", "config": {"url": "ftp://h"}}, headers=admin.headers)
    assert bad.status_code == 400 and "http(s)" in bad.json()["detail"]
    _add(client, admin)
    body = {"name": "tests", "config": stdio_entry()}
    again = client.post(BASE, json=body, headers=admin.headers)
    assert again.status_code == 409
    failing = client.post(
        f"{BASE}/test",
        json={"name": "nothing", "config": {"command": "/nonexistent/program"}},
        headers=admin.headers,
    ).json()
    assert failing["ok"] is False and failing["error"]


def test_an_auto_tool_runs_and_is_audited_with_its_server(
    client: TestClient, admin: ChatUser
) -> None:
    _add(client, admin, tool_policies={"echo": "auto"})
    _wait_healthy(client, admin)
    alice = create_user()
    offered = client.get("/api/tools", headers=alice.headers).json()["data"]
    assert "tests__echo" in {t["name"] for t in offered}
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'use tests__echo with {"text": "ping"}')
    body = turn.json()
    [execution] = body["tool_executions"]
    assert execution["server"] == "tests" and execution["status"] == "succeeded"
    assert execution["result"] == "ping" and execution["approval"] == "auto"
    assert "ping" in body["assistant_message"]["content"]
    log = client.get(f"/api/conversations/{chat['uuid']}/tool-executions", headers=alice.headers)
    assert log.json()["data"][0]["server"] == "tests"
    exported = client.get("/api/export", headers=alice.headers).json()
    [logged] = next(c for c in exported["conversations"] if c["uuid"] == chat["uuid"])[
        "tool_executions"
    ]
    assert logged["server"] == "tests" and logged["result"] == "ping"
    audit = client.get("/api/admin/tool-executions?server=tests", headers=admin.headers).json()
    assert audit["count"] == 1 and audit["data"][0]["user"] == alice.username
    assert audit["data"][0]["execution"]["result"] == "ping"
    assert client.get("/api/admin/tool-executions", headers=alice.headers).status_code == 403


def test_a_tool_that_must_ask_waits_and_can_be_edited_then_approved(
    client: TestClient, admin: ChatUser
) -> None:
    _add(client, admin)  # default policy: ask
    _wait_healthy(client, admin)
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'use tests__echo with {"text": "first"}')
    [pending] = turn.json()["tool_executions"]
    assert pending["status"] == "pending" and pending["server"] == "tests"
    url = f"/api/conversations/{chat['uuid']}/tool-executions/{pending['uuid']}/approve"
    approved = client.post(url, json={"arguments": {"text": "edited"}}, headers=alice.headers)
    assert approved.status_code == 201, approved.text
    [done] = approved.json()["tool_executions"]
    assert done["status"] == "succeeded" and done["result"] == "edited"
    assert done["arguments"] == {"text": "edited"} and done["approved_by"] == alice.username


def test_a_rejection_reason_reaches_the_model_and_the_log(
    client: TestClient, admin: ChatUser
) -> None:
    _add(client, admin)
    _wait_healthy(client, admin)
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'use tests__echo with {"text": "x"}')
    [pending] = turn.json()["tool_executions"]
    url = f"/api/conversations/{chat['uuid']}/tool-executions/{pending['uuid']}/reject"
    rejected = client.post(url, json={"reason": "not now"}, headers=alice.headers).json()
    [done] = rejected["tool_executions"]
    assert done["status"] == "rejected" and done["reason"] == "not now"
    assert "not now" in rejected["assistant_message"]["content"]


def test_ask_mode_makes_even_auto_tools_wait(client: TestClient, admin: ChatUser) -> None:
    _add(client, admin, tool_policies={"echo": "auto"})
    _wait_healthy(client, admin)
    alice = create_user()
    chat = create_conversation(client, alice)
    mode = client.put(
        f"/api/conversations/{chat['uuid']}/approval_mode",
        json={"approval_mode": "ask"},
        headers=alice.headers,
    )
    assert mode.json()["approval_mode"] == "ask"
    turn = send_message(client, alice, chat["uuid"], 'use tests__echo with {"text": "x"}').json()
    assert turn["tool_executions"][0]["status"] == "pending"
    status = client.get(f"/api/conversations/{chat['uuid']}/status", headers=alice.headers).json()
    assert status["approval_mode"] == "ask" and status["servers"]["tests"]["healthy"] is True
    assert status["message_counts"]["user"] == 1
    summary = client.get(f"/api/conversations/{chat['uuid']}/tools", headers=alice.headers).json()
    echo = next(t for t in summary["tools"] if t["name"] == "tests__echo")
    assert echo["calls"] == {"pending": 1} and echo["server_healthy"] is True


def test_never_tools_and_other_users_servers_are_not_offered(
    client: TestClient, admin: ChatUser
) -> None:
    alice, bob = create_user(), create_user()
    _add(client, admin, access="users", users=[alice.username], tool_policies={"crash": "never"})
    _wait_healthy(client, admin)
    names = {t["name"] for t in client.get("/api/tools", headers=alice.headers).json()["data"]}
    assert "tests__echo" in names and "tests__crash" not in names
    bob_names = {t["name"] for t in client.get("/api/tools", headers=bob.headers).json()["data"]}
    assert not any(name.startswith("tests__") for name in bob_names)
    chat = create_conversation(client, bob)
    turn = send_message(client, bob, chat["uuid"], 'use tests__echo with {"text": "x"}').json()
    assert turn["tool_executions"] == []  # not offered, so never proposed


def test_a_slow_tool_fails_after_the_timeout_and_the_model_is_told(
    client: TestClient, admin: ChatUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.registry, "call_timeout", 1.5)
    _add(client, admin, tool_policies={"slow": "auto", "big": "auto"})
    _wait_healthy(client, admin)
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'use tests__slow with {"seconds": 30}').json()
    [execution] = turn["tool_executions"]
    assert execution["status"] == "failed" and "did not answer" in execution["result"]
    assert "did not answer" in turn["assistant_message"]["content"]


def test_a_result_over_the_size_limit_fails_and_the_model_is_told(
    client: TestClient, admin: ChatUser
) -> None:
    _add(client, admin, tool_policies={"big": "auto"})
    _wait_healthy(client, admin)
    alice = create_user()
    chat = create_conversation(client, alice)
    big = send_message(client, alice, chat["uuid"], "use tests__big with {}").json()
    [execution] = big["tool_executions"]
    assert execution["status"] == "failed" and "larger than" in execution["result"]
    assert "larger than" in big["assistant_message"]["content"]


def test_disabling_a_server_stops_offering_its_tools(client: TestClient, admin: ChatUser) -> None:
    _add(client, admin)
    _wait_healthy(client, admin)
    alice = create_user()
    changed = client.patch(f"{BASE}/tests", json={"enabled": False}, headers=admin.headers)
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    names = {t["name"] for t in client.get("/api/tools", headers=alice.headers).json()["data"]}
    assert not any(name.startswith("tests__") for name in names)
    assert client.delete(f"{BASE}/tests", headers=admin.headers).status_code == 204
    assert client.get(BASE, headers=admin.headers).json()["count"] == 0


def test_servers_from_the_file_are_loaded_at_start(
    tmp_path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    from backend.core.config import settings
    from backend.main import app

    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": {"fromfile": stdio_entry()}}))
    monkeypatch.setattr(settings, "MCP_SERVERS_FILE", str(path))
    admin = create_user(is_admin=True)
    with TestClient(app) as client:
        server = _wait_healthy(client, admin, name="fromfile")
        assert server["source"] == "file"
        refused = client.delete(f"{BASE}/fromfile", headers=admin.headers)
        assert refused.status_code == 409 and "MCP_SERVERS_FILE" in refused.json()["detail"]


def test_stdio_servers_can_be_kept_out_of_the_admin_ui(
    client: TestClient, admin: ChatUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.core.config import settings

    monkeypatch.setattr(settings, "MCP_ADMIN_STDIO", False)
    body = {"name": "x", "config": {"command": "/bin/sh", "args": ["-c", "id"]}}
    refused = client.post(BASE, json=body, headers=admin.headers)
    assert refused.status_code == 403 and "MCP_SERVERS_FILE" in refused.json()["detail"]
    assert client.post(f"{BASE}/test", json=body, headers=admin.headers).status_code == 403


def test_http_servers_on_private_addresses_are_refused_unless_the_admin_lists_them(
    client: TestClient, admin: ChatUser, http_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"name": "web", "config": {"url": http_server}}
    refused = client.post(f"{BASE}/test", json=body, headers=admin.headers).json()
    assert refused["ok"] is False and "loopback" in refused["error"].lower()
    for form in ("http://2130706433/mcp", "http://[::ffff:127.0.0.1]/mcp", "http://0x7f000001/mcp"):
        probe = {"name": "web", "config": {"url": form}}
        assert client.post(f"{BASE}/test", json=probe, headers=admin.headers).json()["ok"] is False

    from backend.core.config import settings

    monkeypatch.setattr(settings, "EGRESS_ALLOW_PRIVATE_NETWORKS", ["127.0.0.0/8"])
    allowed = client.post(f"{BASE}/test", json=body, headers=admin.headers).json()
    assert allowed["ok"] is True, allowed
    assert "echo" in {t["name"] for t in allowed["tools"]}
    _add(client, admin, name="web", config={"url": http_server}, tool_policies={"echo": "auto"})
    _wait_healthy(client, admin, name="web")
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'use web__echo with {"text": "via http"}')
    assert turn.json()["tool_executions"][0]["result"] == "via http"


def test_a_server_that_dies_during_a_call_is_restarted_and_works_again(
    client: TestClient, admin: ChatUser
) -> None:
    _add(client, admin, tool_policies={"crash": "auto", "echo": "auto"})
    _wait_healthy(client, admin)
    alice = create_user()
    chat = create_conversation(client, alice)
    crashed = send_message(client, alice, chat["uuid"], "use tests__crash with {}").json()
    [execution] = crashed["tool_executions"]
    assert execution["status"] == "failed" and "stopped" in execution["result"]
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        server = client.get(BASE, headers=admin.headers).json()["data"][0]
        if server["restarts"] >= 1 and server["healthy"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the server was not restarted: {server}")
    again = send_message(client, alice, chat["uuid"], 'use tests__echo with {"text": "back"}')
    assert again.json()["tool_executions"][0]["result"] == "back"


def test_arguments_that_do_not_fit_the_schema_never_reach_the_server(
    client: TestClient, admin: ChatUser
) -> None:
    _add(client, admin, tool_policies={"echo": "auto"})
    _wait_healthy(client, admin)
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'use tests__echo with {"text": 5}').json()
    [execution] = turn["tool_executions"]
    assert execution["status"] == "failed" and execution["result"].startswith("Invalid arguments")


def test_a_file_servers_tokens_are_forgotten_when_the_file_changes_it() -> None:
    from backend.core.db import SessionLocal
    from backend.mcp.config import parse_server
    from backend.models import McpServer
    from backend.services import mcp_servers

    first = parse_server("filed", {"url": "https://tools.example.com/mcp", "oauth": True})
    with SessionLocal() as session:
        mcp_servers.sync_file_servers(session=session, configs=[first])
        row = session.scalars(select(McpServer).where(McpServer.name == "filed")).one()
        row.oauth = json.dumps({"tokens": {"access_token": "a"}})
        session.commit()
        mcp_servers.sync_file_servers(session=session, configs=[first])  # unchanged: kept
        session.refresh(row)
        assert row.oauth is not None
        moved = parse_server("filed", {"url": "https://tools2.example.com/mcp", "oauth": True})
        mcp_servers.sync_file_servers(session=session, configs=[moved])
        session.refresh(row)
        assert row.oauth is None
