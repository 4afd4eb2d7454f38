"""OAuth for Streamable HTTP MCP servers, against a real authorization server + MCP server on
loopback (built with the SDK's server-side auth): the admin authorizes in the browser
(authorization code with PKCE, the client registering itself), the browser comes back to
Open Chat's callback, the tokens are stored encrypted and refreshed, and never shown; a
client-credentials server needs nobody. Every request goes through the egress guard."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from chat_factories import ChatUser, create_conversation, create_user, send_message
from conftest import TEST_DB
from fastapi.testclient import TestClient
from mcp_test_servers import oauth_tools_server
from sqlalchemy import select

from backend.core.config import settings
from backend.core.db import SessionLocal
from backend.models import McpServer
from tests.file_scan import files_containing

BASE = "/api/admin/mcp-servers"
TOKEN_SECONDS = 3


@pytest.fixture(scope="module")
def oauth_servers() -> Iterator[tuple[str, str]]:
    with oauth_tools_server(token_seconds=TOKEN_SECONDS) as urls:
        yield urls


@pytest.fixture
def oauth_server(oauth_servers: tuple[str, str]) -> str:
    """The MCP endpoint (its authorization server is on 127.0.0.2)."""
    return oauth_servers[0]


@pytest.fixture
def issuer(oauth_servers: tuple[str, str]) -> str:
    return oauth_servers[1]


@pytest.fixture
def admin() -> ChatUser:
    return create_user(is_admin=True)


@pytest.fixture
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "EGRESS_ALLOW_PRIVATE_NETWORKS", ["127.0.0.0/8"])


def _server(client: TestClient, admin: ChatUser, name: str) -> dict[str, Any]:
    servers = client.get(BASE, headers=admin.headers).json()["data"]
    return next(s for s in servers if s["name"] == name)


def _wait(client: TestClient, admin: ChatUser, name: str, until: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        server = _server(client, admin, name)
        if until(server):
            return server
        time.sleep(0.2)
    pytest.fail(f"the MCP server never got there: {server}")


def _stored(name: str) -> dict[str, Any]:
    with SessionLocal() as session:
        row = session.scalars(select(McpServer).where(McpServer.name == name)).one()
        return json.loads(row.oauth or "{}")


def _add(client: TestClient, admin: ChatUser, name: str, config: dict[str, Any]) -> None:
    body = {"name": name, "config": config, "tool_policies": {"echo": "auto", "grants": "auto"}}
    created = client.post(BASE, json=body, headers=admin.headers)
    assert created.status_code == 201, created.text


def _grants(client: TestClient, user: ChatUser, name: str) -> dict[str, int]:
    chat = create_conversation(client, user)
    turn = send_message(client, user, chat["uuid"], f"use {name}__grants with {{}}").json()
    [execution] = turn["tool_executions"]
    assert execution["status"] == "succeeded", execution
    return json.loads(execution["result"])


def _authorize(client: TestClient, admin: ChatUser, name: str) -> httpx.Response:
    """What the admin's browser does: start, visit the authorization server, come back."""
    started = client.post(f"{BASE}/{name}/oauth/start", headers=admin.headers)
    assert started.status_code == 200, started.text
    authorization_url = started.json()["authorization_url"]
    query = parse_qs(urlsplit(authorization_url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["redirect_uri"] == ["http://testserver/api/mcp-oauth/callback"]
    consent = httpx.get(authorization_url, follow_redirects=False)
    assert consent.status_code == 302, consent.text
    back = consent.headers["location"]
    assert back.startswith("http://testserver/api/mcp-oauth/callback?")
    return client.get(back, follow_redirects=False)


def test_an_admin_authorizes_a_server_whose_tokens_are_stored_and_never_shown(
    client: TestClient, admin: ChatUser, oauth_server: str, loopback_allowed: None, test_dir: Path
) -> None:
    _add(client, admin, "guarded", {"url": oauth_server, "oauth": True})
    waiting = _wait(client, admin, "guarded", lambda s: s["last_error"])
    assert "needs authorization" in waiting["last_error"] and not waiting["healthy"]
    # Trying in the background never registers a client: only the admin's authorization does.
    assert waiting["oauth_status"] == {
        "authorized": False,
        "expires_at": None,
        "client_registered": False,
        "pending": False,
        "error": None,
    }
    back = _authorize(client, admin, "guarded")
    assert back.status_code == 303
    assert back.headers["location"] == "/admin.html?oauth=authorized&server=guarded#mcp"
    server = _wait(client, admin, "guarded", lambda s: s["healthy"] and s["tools"])
    assert server["oauth_status"]["authorized"] and server["oauth_status"]["client_registered"]
    assert server["oauth"]["grant"] == "authorization_code"
    stored = _stored("guarded")
    access, refresh = stored["tokens"]["access_token"], stored["tokens"]["refresh_token"]
    listing = client.get(BASE, headers=admin.headers).text
    assert access not in listing and refresh not in listing
    alice = create_user()
    chat = create_conversation(client, alice)
    turn = send_message(client, alice, chat["uuid"], 'use guarded__echo with {"text": "hi"}')
    assert turn.json()["tool_executions"][0]["result"] == "hi"
    if TEST_DB == "deltadb":  # every row is encrypted: the tokens are nowhere on disk in clear
        # read by a child: closing a descriptor of the open replica here would drop this
        # process's SQLite locks on it (see tests/file_scan.py)
        found = files_containing(test_dir, access.encode(), refresh.encode(), recursive=True)
        assert found == []


def test_tokens_are_refreshed_when_they_expire_also_after_a_reconnect(
    client: TestClient, admin: ChatUser, oauth_server: str, loopback_allowed: None
) -> None:
    _add(client, admin, "refreshed", {"url": oauth_server, "oauth": True})
    assert _authorize(client, admin, "refreshed").status_code == 303
    _wait(client, admin, "refreshed", lambda s: s["healthy"])
    alice = create_user()
    before = _grants(client, alice, "refreshed")
    first_token = _stored("refreshed")["tokens"]["access_token"]
    time.sleep(TOKEN_SECONDS + 1)
    after = _grants(client, alice, "refreshed")  # the expired token is refreshed first
    assert after["refresh_token"] > before["refresh_token"]
    assert after["authorization_code"] == before["authorization_code"]
    assert _stored("refreshed")["tokens"]["access_token"] != first_token
    # A new connection (another worker, a restart) reads the tokens and their expiry from
    # the row, and refreshes instead of asking for a new authorization.
    time.sleep(TOKEN_SECONDS + 1)
    client.patch(f"{BASE}/refreshed", json={"enabled": False}, headers=admin.headers)
    client.patch(f"{BASE}/refreshed", json={"enabled": True}, headers=admin.headers)
    _wait(client, admin, "refreshed", lambda s: s["healthy"])
    again = _grants(client, alice, "refreshed")
    assert again["refresh_token"] > after["refresh_token"]
    assert again["authorization_code"] == before["authorization_code"]


def test_a_client_credentials_server_gets_its_tokens_by_itself(
    client: TestClient, admin: ChatUser, oauth_server: str, issuer: str, loopback_allowed: None
) -> None:
    oauth = {
        "grant": "client_credentials",
        "client_id": "machine",
        "client_secret": "machine-secret",
        "issuer": issuer,
    }
    _add(client, admin, "machine", {"url": oauth_server, "oauth": oauth})
    server = _wait(client, admin, "machine", lambda s: s["healthy"])
    assert server["oauth"] == {
        "grant": "client_credentials",
        "client_id": "machine",
        "scope": None,
        "issuer": issuer,
        "has_client_secret": True,
    }
    assert "machine-secret" not in client.get(BASE, headers=admin.headers).text
    assert _grants(client, create_user(), "machine")["client_credentials"] >= 1
    wrong = {"url": oauth_server, "oauth": oauth | {"client_secret": "wrong"}}
    _add(client, admin, "wrong", wrong)
    failing = _wait(client, admin, "wrong", lambda s: s["last_error"])
    assert not failing["healthy"] and "401" in failing["last_error"]


def test_the_authorization_goes_through_the_egress_guard(
    client: TestClient, admin: ChatUser, oauth_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(client, admin, "private", {"url": oauth_server, "oauth": True})
    refused = client.post(f"{BASE}/private/oauth/start", headers=admin.headers)
    assert refused.status_code == 400 and "loopback" in refused.json()["detail"].lower()
    # The MCP server's address is allowed, its authorization server's is not: discovery,
    # registration and token requests pass the same guard, so the flow stops there.
    monkeypatch.setattr(settings, "EGRESS_ALLOW_PRIVATE_NETWORKS", ["127.0.0.0/8"])
    monkeypatch.setattr(settings, "MCP_HTTP_ALLOWLIST", ["127.0.0.1"])
    listed = client.post(f"{BASE}/private/oauth/start", headers=admin.headers)
    assert listed.status_code == 400, listed.text
    assert "127.0.0.2" in listed.json()["detail"] and "allow-list" in listed.json()["detail"]
    assert not _stored("private").get("client")  # nothing was registered anywhere
    monkeypatch.setattr(settings, "MCP_HTTP_ALLOWLIST", ["127.0.0.1", "127.0.0.2"])
    assert _authorize(client, admin, "private").status_code == 303
    _wait(client, admin, "private", lambda s: s["healthy"])


def test_callbacks_that_match_no_authorization_and_refusals_say_so(
    client: TestClient, admin: ChatUser, oauth_server: str, loopback_allowed: None
) -> None:
    unknown = client.get("/api/mcp-oauth/callback?state=forged-state-value&code=abc")
    assert unknown.status_code == 404 and "start it again" in unknown.json()["detail"]
    stateless = client.get("/api/mcp-oauth/callback?code=abc")
    assert stateless.status_code == 400 and "not an answer" in stateless.json()["detail"]
    _add(client, admin, "denied", {"url": oauth_server, "oauth": True})
    started = client.post(f"{BASE}/denied/oauth/start", headers=admin.headers).json()
    state = parse_qs(urlsplit(started["authorization_url"]).query)["state"][0]
    back = client.get(
        f"/api/mcp-oauth/callback?state={state}&error=access_denied", follow_redirects=False
    )
    assert back.status_code == 303 and "oauth=failed" in back.headers["location"]
    status = _server(client, admin, "denied")["oauth_status"]
    assert not status["authorized"] and "access_denied" in status["error"]
    # The state is spent: the same callback again matches nothing.
    again = client.get(f"/api/mcp-oauth/callback?state={state}&code=abc")
    assert again.status_code == 404
    plain = client.post(
        BASE, json={"name": "plain", "config": {"url": oauth_server}}, headers=admin.headers
    )
    assert plain.status_code == 201
    not_oauth = client.post(f"{BASE}/plain/oauth/start", headers=admin.headers)
    assert not_oauth.status_code == 400 and "not configured for OAuth" in not_oauth.json()["detail"]


def test_tokens_the_server_refuses_leave_it_waiting_for_an_admin(
    client: TestClient, admin: ChatUser, oauth_server: str, loopback_allowed: None
) -> None:
    _add(client, admin, "revoked", {"url": oauth_server, "oauth": True})
    assert _authorize(client, admin, "revoked").status_code == 303
    _wait(client, admin, "revoked", lambda s: s["healthy"])
    stored = _stored("revoked")
    stored["tokens"] |= {"access_token": "revoked-access", "refresh_token": "revoked-refresh"}
    with SessionLocal() as session:
        row = session.scalars(select(McpServer).where(McpServer.name == "revoked")).one()
        row.oauth = json.dumps(stored)
        session.commit()
    client.patch(f"{BASE}/revoked", json={"enabled": False}, headers=admin.headers)
    client.patch(f"{BASE}/revoked", json={"enabled": True}, headers=admin.headers)
    waiting = _wait(client, admin, "revoked", lambda s: s["last_error"])
    assert not waiting["healthy"] and "needs authorization" in waiting["last_error"]
    assert _authorize(client, admin, "revoked").status_code == 303  # the admin does it again
    _wait(client, admin, "revoked", lambda s: s["healthy"])


def test_changing_the_configuration_forgets_the_tokens(
    client: TestClient, admin: ChatUser, oauth_server: str, loopback_allowed: None
) -> None:
    _add(client, admin, "changed", {"url": oauth_server, "oauth": True})
    assert _authorize(client, admin, "changed").status_code == 303
    assert _server(client, admin, "changed")["oauth_status"]["authorized"]
    body = {"config": {"url": oauth_server, "oauth": {"scope": "tools"}}}
    changed = client.patch(f"{BASE}/changed", json=body, headers=admin.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["oauth_status"]["authorized"] is False
    assert changed.json()["oauth"]["scope"] == "tools"
    assert "tokens" not in _stored("changed")


def test_a_second_authorization_replaces_the_first_without_being_disturbed_by_it(
    client: TestClient, admin: ChatUser, oauth_server: str, loopback_allowed: None
) -> None:
    _add(client, admin, "twice", {"url": oauth_server, "oauth": True})
    start = f"{BASE}/twice/oauth/start"
    first = client.post(start, headers=admin.headers).json()["authorization_url"]
    second = client.post(start, headers=admin.headers).json()["authorization_url"]
    time.sleep(1.0)  # the first flow notices it was replaced, and gives up
    stale = httpx.get(first, follow_redirects=False).headers["location"]
    assert client.get(stale, follow_redirects=False).status_code == 404
    fresh = httpx.get(second, follow_redirects=False).headers["location"]
    back = client.get(fresh, follow_redirects=False)
    assert back.status_code == 303 and "oauth=authorized" in back.headers["location"]
    _wait(client, admin, "twice", lambda s: s["healthy"])


@pytest.mark.slow
def test_an_authorization_started_in_one_process_completes_through_another(
    tmp_path: Path, oauth_server: str
) -> None:
    """Two uvicorn processes on one store, as two workers behind a balancer: the browser's
    return lands on the process that did not start the authorization."""
    from live_server import live_service, service_env

    admin = {"username": "oauthadmin", "password": "oauth admin password"}
    env = service_env(
        tmp_path,
        ADMIN_USERNAME=admin["username"],
        ADMIN_PASSWORD=admin["password"],
        EGRESS_ALLOW_PRIVATE_NETWORKS="127.0.0.0/8",
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        live_service(tmp_path / "a", env=env) as first,
        live_service(tmp_path / "b", env=env) as second,
    ):
        token = httpx.post(f"{first}/api/auth/login", json=admin, timeout=30).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        body = {"name": "shared", "config": {"url": oauth_server, "oauth": True}}
        assert (
            httpx.post(f"{first}{BASE}", json=body, headers=headers, timeout=30).status_code == 201
        )
        started = httpx.post(f"{first}{BASE}/shared/oauth/start", headers=headers, timeout=60)
        assert started.status_code == 200, started.text
        consent = httpx.get(started.json()["authorization_url"], follow_redirects=False)
        back = urlsplit(consent.headers["location"])
        assert f"{back.scheme}://{back.netloc}" == first
        elsewhere = httpx.get(
            f"{second}{back.path}?{back.query}", follow_redirects=False, timeout=60
        )
        assert elsewhere.status_code == 303, elsewhere.text
        assert "oauth=authorized" in elsewhere.headers["location"]
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            listed = httpx.get(f"{first}{BASE}", headers=headers, timeout=30).json()["data"][0]
            if listed["healthy"]:
                break
            time.sleep(0.3)
        assert listed["healthy"] and listed["oauth_status"]["authorized"], listed
