"""Credentials: keys used directly as bearer tokens, scoped keys that stay in their scope,
the failure throttle, key lifetimes, and development mode's guards (in-process)."""

from __future__ import annotations

from typing import Any

import pytest
from ddb_server_helpers import ADMIN_KEY, Api


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + credential}


def new_key(api: Api, creator: dict[str, str], **body: Any) -> Any:
    return api.client.post("/api/keys", headers=creator, json={"name": "k", **body})


# ── the admin key and API keys as bearer tokens ──────────────────────────


def test_admin_key_is_a_bearer_token_on_every_route(api: Api) -> None:
    admin = bearer(ADMIN_KEY)
    assert api.client.put("/entity/direct", json={"k": {"v": 1}}, headers=admin).status_code == 200
    assert api.client.get("/entity/direct?key=k", headers=admin).json() == {"v": 1}
    assert api.client.get("/api/keys", headers=admin).json() == []
    assert api.client.put("/schema/direct", json={"type": "object"}, headers=admin).status_code \
        == 201
    assert api.client.get("/api/me", headers=admin).json()["client_id"] == "admin"
    assert api.client.get("/admin/workers", headers=admin).status_code == 200


def test_api_key_is_a_bearer_token_with_its_own_permissions(api: Api) -> None:
    api.client.put("/entity/rbac", json={"item": {"x": 1}}, headers=bearer(ADMIN_KEY))
    created = new_key(api, bearer(ADMIN_KEY), permissions=["read"]).json()
    reader = bearer(created["secret"])
    assert created["secret"].startswith("dk_")
    assert api.client.get("/entity/rbac?key=item", headers=reader).status_code == 200
    assert api.client.put("/entity/rbac", json={"item": {"x": 2}}, headers=reader).status_code \
        == 403
    assert api.client.get("/api/keys", headers=reader).status_code == 403
    me = api.client.get("/api/me", headers=reader).json()
    assert me["api_key_id"] == created["id"] and me["permissions"] == ["read"]
    # Deleting the key stops it at once in this process (the cache is cleared).
    assert api.client.delete(f"/api/keys/{created['id']}", headers=bearer(ADMIN_KEY)).json() \
        == {"status": "ok"}
    assert api.client.get("/entity/rbac?key=item", headers=reader).status_code == 401


def test_expired_api_key_is_refused_as_a_bearer_token(api: Api, engine_url: str) -> None:
    import sqlalchemy

    secret = new_key(api, bearer(ADMIN_KEY), permissions=["read"], expires_in=60).json()["key"]
    engine = sqlalchemy.create_engine(engine_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("update __deltadb_api_keys set expires_at = '2000-01-01T00:00:00Z'")
    engine.dispose()
    assert api.client.get("/databases", headers=bearer(secret)).status_code == 401


def test_keys_made_before_the_dk_prefix_still_work(api: Api) -> None:
    secret = new_key(api, bearer(ADMIN_KEY), permissions=["read"]).json()["key"]
    old_style = "ddb_" + secret.split("_", 1)[1]
    assert api.client.get("/databases", headers=bearer(old_style)).status_code == 200
    assert api.client.post("/api/login", json={"key": old_style}).status_code == 200


def test_only_login_tokens_can_log_out(api: Api) -> None:
    response = api.client.post("/api/logout", headers=bearer(ADMIN_KEY))
    assert response.status_code == 400 and "DELETE /api/keys" in response.json()["error"]


# ── the failure throttle ─────────────────────────────────────────────────


def test_wrong_keys_never_lock_out_the_right_ones(api: Api) -> None:
    api_key = new_key(api, bearer(ADMIN_KEY), permissions=["read"]).json()["key"]
    token = api.login(key=ADMIN_KEY)
    for i in range(10):
        assert api.client.get("/databases", headers=bearer(f"guess-{i}")).status_code == 401
    locked = api.client.get("/databases", headers=bearer("guess-11"))
    assert locked.status_code == 401 and int(locked.headers["retry-after"]) >= 1
    assert "not checked" in locked.json()["error"]
    # Keys and tokens (256 random bits) are always checked; the admin key, accepted from this
    # address before the failures, still works too.
    assert api.client.get("/databases", headers=bearer(api_key)).status_code == 200
    assert api.client.get("/databases", headers=token).status_code == 200
    assert api.client.get("/databases", headers=bearer(ADMIN_KEY)).status_code == 200


def test_guessing_the_admin_key_is_throttled(api: Api) -> None:
    for i in range(10):
        assert api.client.post("/api/login", json={"key": f"guess-{i}"}).status_code == 401
    # The admin key, never accepted from this address, is not even compared now.
    blocked = api.client.post("/api/login", json={"key": ADMIN_KEY})
    assert blocked.status_code == 401 and "not checked" in blocked.json()["error"]
    assert int(blocked.headers["retry-after"]) >= 1
    assert api.client.get("/databases", headers=bearer(ADMIN_KEY)).status_code == 401


# ── scoped admin keys stay inside their scope ────────────────────────────


@pytest.fixture
def notes_admin(api: Api) -> dict[str, str]:
    """A login token of a key with ``admin`` on ``notes_*`` (as an attacker holding one has)."""
    created = new_key(api, api.admin(), permissions=["admin"], databases=["notes_*"])
    assert created.status_code == 201
    return api.login(key=created.json()["key"])


@pytest.mark.parametrize("body", [
    {"permissions": ["admin"]},  # inherits notes_*, fine
    {"permissions": ["read"], "databases": ["notes_a"]},
    {"permissions": ["write"], "databases": ["notes_a*", "notes_b"]},
])
def test_a_scoped_admin_key_makes_keys_within_its_scope(
    api: Api, notes_admin: dict[str, str], body: dict[str, Any]
) -> None:
    created = new_key(api, notes_admin, **body)
    assert created.status_code == 201, created.text
    databases = created.json()["databases"]
    assert databases == body.get("databases", ["notes_*"])
    child = api.login(key=created.json()["key"])
    assert api.client.get("/entity/users?key=1", headers=child).status_code == 403


@pytest.mark.parametrize("body", [
    {"permissions": ["admin"], "databases": ["users"]},
    {"permissions": ["admin"], "databases": ["notes*"]},  # a wider prefix
    {"permissions": ["admin"], "databases": ["notes_a", "chat"]},
])
def test_a_scoped_admin_key_cannot_widen_its_scope(
    api: Api, notes_admin: dict[str, str], body: dict[str, Any]
) -> None:
    response = new_key(api, notes_admin, **body)
    assert response.status_code == 403 and "scope" in response.json()["error"]


def test_a_key_cannot_grant_permissions_it_lacks(api: Api) -> None:
    writer = api.login(key=new_key(api, api.admin(), permissions=["admin"],
                                   databases=["x"]).json()["key"])
    assert new_key(api, writer, permissions=["read", "write"]).status_code == 201
    # A read/write key is no admin, so it cannot make keys at all.
    rw = api.login(key=new_key(api, api.admin(), permissions=["read", "write"]).json()["key"])
    assert new_key(api, rw, permissions=["read"]).status_code == 403


def test_a_key_never_outlives_the_key_that_made_it(api: Api) -> None:
    parent = new_key(api, api.admin(), permissions=["admin"], databases=["n"],
                     expires_in="1h").json()
    parent_token = api.login(key=parent["key"])
    child = new_key(api, parent_token, permissions=["read"], expires_in="30d").json()
    assert child["expires_at"] == parent["expires_at"]
    forever = new_key(api, parent_token, permissions=["read"]).json()
    assert forever["expires_at"] == parent["expires_at"]


def test_scoped_admin_keys_manage_only_schemas_in_scope(
    api: Api, notes_admin: dict[str, str]
) -> None:
    schema = {"type": "object"}
    assert api.client.put("/schema/users", json=schema, headers=notes_admin).status_code == 403
    assert api.client.put("/schema/notes_a", json=schema, headers=notes_admin).status_code == 201
    api.client.put("/schema/users", json=schema, headers=api.admin())
    assert api.client.delete("/schema/users", headers=notes_admin).status_code == 403
    assert api.client.delete("/schema/notes_a", headers=notes_admin).status_code == 200
    assert api.client.get("/schema/users", headers=api.admin()).status_code == 200


def test_scoped_admin_keys_list_and_delete_only_keys_in_scope(
    api: Api, notes_admin: dict[str, str]
) -> None:
    everywhere = new_key(api, api.admin(), permissions=["read"]).json()
    users = new_key(api, api.admin(), permissions=["read"], databases=["users"]).json()
    mine = new_key(api, notes_admin, permissions=["read"], databases=["notes_x"]).json()
    listed = {k["id"] for k in api.client.get("/api/keys", headers=notes_admin).json()}
    assert mine["id"] in listed and everywhere["id"] not in listed and users["id"] not in listed
    for other in (everywhere, users):
        assert api.client.delete(f"/api/keys/{other['id']}", headers=notes_admin).status_code \
            == 404
    assert api.client.delete(f"/api/keys/{mine['id']}", headers=notes_admin).status_code == 200
    still = {k["id"] for k in api.client.get("/api/keys", headers=api.admin()).json()}
    assert {everywhere["id"], users["id"]} <= still and mine["id"] not in still


# ── key lifetimes ────────────────────────────────────────────────────────


@pytest.mark.parametrize("expires_in", [1e308, "1e308", -1, 0, 10**30, "99999999999999d",
                                        True, [1], {"s": 1}])
def test_absurd_key_lifetimes_are_400_with_a_sentence(api: Api, expires_in: Any) -> None:
    response = new_key(api, api.admin(), permissions=["read"], expires_in=expires_in)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("expires_in")


def test_nan_lifetime_is_400(api: Api) -> None:
    response = api.client.post("/api/keys", headers=api.admin(),
                               content=b'{"name":"k","permissions":["read"],"expires_in":NaN}')
    assert response.status_code == 400


# ── development mode ─────────────────────────────────────────────────────


def test_development_mode_refuses_other_host_names(dev_api: Api) -> None:
    for host in ("attacker.example", "127.0.0.1.nip.io", "localhost.attacker.example"):
        response = dev_api.client.get("/health", headers={"Host": host})
        assert response.status_code == 421 and "loopback" in response.json()["error"]
    for host in ("localhost", "localhost:8080", "127.0.0.1:9", "[::1]:8080"):
        assert dev_api.client.get("/health", headers={"Host": host}).status_code == 200


def test_production_mode_serves_any_host_name(api: Api) -> None:
    assert api.client.get("/health", headers={"Host": "db.example"}).status_code == 200


def test_logins_must_be_json(dev_api: Api) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = dev_api.client.post("/api/login", content=b'{"client_id":"x"}',
                                       headers=headers)
        assert response.status_code == 415, content_type
    assert dev_api.client.post("/api/login", json={"client_id": "x"}).status_code == 200


def test_development_token_has_full_rights(make_api: Any) -> None:
    dev = make_api(admin_key=None, dev_token="dev-token-for-this-test-0123456789",
                   allow_client_id_login=False)
    assert dev.client.post("/api/login", json={"client_id": "x"}).status_code == 401
    headers = bearer("dev-token-for-this-test-0123456789")
    assert dev.client.put("/entity/d", json={"k": {}}, headers=headers).status_code == 200
    me = dev.client.get("/api/me", headers=headers).json()
    assert me["client_id"] == "development" and "admin" in me["permissions"]
    assert dev.login(key="dev-token-for-this-test-0123456789")


def test_client_id_logins_are_never_accepted_from_web_pages(dev_api: Api) -> None:
    for header in ({"Origin": "http://localhost:8080"}, {"Sec-Fetch-Site": "same-origin"}):
        response = dev_api.client.post("/api/login", json={"client_id": "x"}, headers=header)
        assert response.status_code == 403 and "development token" in response.json()["error"]


# ── security headers ─────────────────────────────────────────────────────


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/health", "/entity/db?key=k",
                                  "/api/me", "/no/such/route"])
def test_every_answer_carries_the_security_headers(api: Api, path: str) -> None:
    response = api.client.get(path)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    if not (path == "/" or path.startswith("/static/")):
        assert response.headers["cache-control"] == "no-store"


def test_ui_has_no_inline_script_or_style(api: Api) -> None:
    import re

    page = api.client.get("/").text
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert " style=" not in page and "<style" not in page and " on" + "click=" not in page
