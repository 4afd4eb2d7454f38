"""Every route, status code and permission rule of the entity server (in-process)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest
import sqlalchemy
from ddb_server_helpers import ADMIN_KEY, Api

ENTITY = {"messages": [{"role": "user", "content": "Hello!"}]}


def error_of(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return str(body["error"])


# ── health, info, openapi, UI, unknown routes ─────────────────────────────


def test_health_needs_no_auth(api: Api) -> None:
    response = api.client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_info_reports_mode(api: Api, dev_api: Api) -> None:
    assert api.client.get("/api/info").json()["mode"] == "production"
    assert dev_api.client.get("/api/info").json()["mode"] == "development"


def test_openapi_document_lists_the_api(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in ("/entity/{db}", "/entities/{db}", "/databases", "/api/login", "/api/logout",
                 "/api/me", "/api/keys", "/api/keys/{key_id}", "/admin/schemas",
                 "/schema/{schema_id}", "/admin/workers", "/metrics", "/health"):
        assert path in paths, path
    assert {"put", "get", "delete"} <= set(paths["/entity/{db}"])


def test_unknown_route_and_method_are_json_errors(api: Api) -> None:
    assert api.client.get("/no/such/route").status_code == 404
    assert error_of(api.client.get("/no/such/route")) == "not found"
    response = api.client.post("/health")
    assert response.status_code == 405 and error_of(response) == "method not allowed"


def test_ui_and_static_files_are_served(api: Api) -> None:
    page = api.client.get("/")
    assert page.status_code == 200 and "DeltaDB" in page.text
    assert "http" not in re.sub(r'"http://json-schema[^"]*"', "", page.text).split("<body")[1]
    assert api.client.get("/static/app.js").status_code == 200
    assert api.client.get("/static/style.css").status_code == 200


# ── login, tokens, logout, /api/me ───────────────────────────────────────


def test_admin_key_login_returns_token_and_permissions(api: Api) -> None:
    response = api.client.post("/api/login", json={"key": ADMIN_KEY})
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"token", "client_id", "expires_at", "permissions"}
    assert body["client_id"] == "admin"
    assert body["permissions"] == ["admin", "read", "write"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"])
    token_bytes = base64.urlsafe_b64decode(body["token"] + "=" * (-len(body["token"]) % 4))
    assert len(token_bytes) >= 16  # at least 128 random bits


def test_tokens_are_stored_only_as_sha256(api: Api, engine_url: str) -> None:
    token = api.client.post("/api/login", json={"key": ADMIN_KEY}).json()["token"]
    engine = sqlalchemy.create_engine(engine_url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("select * from __deltadb_tokens").all()
    engine.dispose()
    assert rows and token not in repr(rows)
    assert hashlib.sha256(token.encode()).hexdigest() in {row[0] for row in rows}


@pytest.mark.parametrize("body, status", [
    ({"key": "wrong"}, 401),
    ({"key": "ddb_000000000000_nope"}, 401),
    ({"client_id": "myapp"}, 401),  # production mode: no client_id logins
    ({}, 400),
    ([], 400),
])
def test_bad_logins_are_refused(api: Api, body: Any, status: int) -> None:
    response = api.client.post("/api/login", json=body)
    assert response.status_code == status
    error_of(response)


def test_login_with_invalid_json_is_400(api: Api) -> None:
    response = api.client.post("/api/login", content=b"{nope",
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "invalid JSON" in error_of(response)


def test_development_mode_accepts_client_id(dev_api: Api) -> None:
    body = dev_api.client.post("/api/login", json={"client_id": "myapp"}).json()
    assert body["client_id"] == "myapp" and "write" in body["permissions"]
    me = dev_api.client.get("/api/me", headers={"Authorization": "Bearer " + body["token"]})
    assert me.json()["client_id"] == "myapp" and me.json()["mode"] == "development"


def test_me_describes_the_caller(api: Api) -> None:
    body = api.client.get("/api/me", headers=api.admin()).json()
    assert body["client_id"] == "admin" and body["mode"] == "production"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc"])
def test_missing_or_invalid_token_is_401(api: Api, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in (("GET", "/entity/db?key=k"), ("GET", "/api/me"),
                         ("GET", "/databases"), ("PUT", "/entity/db")):
        response = api.client.request(method, path, headers=headers, json={"k": 1})
        assert response.status_code == 401, (method, path)
        error_of(response)


def test_logout_revokes_the_token(api: Api) -> None:
    headers = api.admin()
    assert api.client.post("/api/logout", headers=headers).json() == {"status": "ok"}
    assert api.client.get("/api/me", headers=headers).status_code == 401


def test_expired_token_is_refused(make_api: Any, engine_url: str) -> None:
    api = make_api(token_cache_seconds=0)
    headers = api.admin()
    assert api.client.get("/api/me", headers=headers).status_code == 200
    engine = sqlalchemy.create_engine(engine_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("update __deltadb_tokens set expires_at = '2000-01-01T00:00:00Z'")
    engine.dispose()
    response = api.client.get("/api/me", headers=headers)
    assert response.status_code == 401 and "expired" in error_of(response)


def test_client_ttl_sets_expiry(make_api: Any) -> None:
    api = make_api(client_ttl=3600)
    body = api.client.post("/api/login", json={"key": ADMIN_KEY}).json()
    me = api.client.get("/api/me", headers={"Authorization": "Bearer " + body["token"]}).json()
    assert me["expires_at"] == body["expires_at"]
    import datetime as dt

    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    left = (expires - dt.datetime.now(dt.UTC)).total_seconds()
    assert 3500 < left <= 3600


# ── entities ─────────────────────────────────────────────────────────────


def test_put_then_get_returns_the_document(api: Api) -> None:
    headers = api.admin()
    docs = {"session_001": ENTITY, "session_002": {"n": 2, "unicode": "é✓", "list": [1, None]}}
    response = api.client.put("/entity/chatdb", json=docs, headers=headers)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    for key, doc in docs.items():
        got = api.client.get("/entity/chatdb", params={"key": key}, headers=headers)
        assert got.status_code == 200 and got.json() == doc
        assert got.headers["content-type"].startswith("application/json")


def test_put_replaces_an_entity(api: Api) -> None:
    headers = api.admin()
    api.client.put("/entity/chatdb", json={"k": {"v": 1}}, headers=headers)
    api.client.put("/entity/chatdb", json={"k": {"w": 2}}, headers=headers)
    assert api.client.get("/entity/chatdb?key=k", headers=headers).json() == {"w": 2}


def test_get_missing_entity_is_404_and_missing_key_is_400(api: Api) -> None:
    headers = api.admin()
    response = api.client.get("/entity/chatdb?key=nope", headers=headers)
    assert response.status_code == 404 and error_of(response) == "entity not found"
    response = api.client.get("/entity/chatdb", headers=headers)
    assert response.status_code == 400 and "key" in error_of(response)
    assert api.client.delete("/entity/chatdb", headers=headers).status_code == 400
    response = api.client.get("/entity/?key=k", headers=headers)  # missing database
    assert response.status_code == 400 and "database name is empty" in error_of(response)


BAD_NAMES = ["a%2Fb", "%2E%2E", "a..b", "a%5Cb", "a%01b", "a%7Fb", "x" * 256, "%C3%A9" * 128,
             "__deltadb_tokens", "sqlite_master"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_database_names_are_400(api: Api, name: str) -> None:
    headers = api.admin()
    for method in ("GET", "PUT", "DELETE"):
        response = api.client.request(method, f"/entity/{name}?key=k", headers=headers,
                                      json={"k": 1})
        assert response.status_code == 400, (method, name, response.text)
        error_of(response)
    assert api.client.get(f"/entities/{name}", headers=headers).status_code == 400


@pytest.mark.parametrize("key", ["a/b", "..", "a\\b", "a\x00b", "a\nb", "x" * 256, ""])
def test_bad_keys_are_400(api: Api, key: str) -> None:
    headers = api.admin()
    assert api.client.put("/entity/db", json={key: 1}, headers=headers).status_code == 400
    assert api.client.get("/entity/db", params={"key": key}, headers=headers).status_code == 400
    assert api.client.delete("/entity/db", params={"key": key},
                             headers=headers).status_code == 400


def test_key_of_255_bytes_is_fine(api: Api) -> None:
    headers = api.admin()
    key = "k" * 255
    assert api.client.put("/entity/db", json={key: 1}, headers=headers).status_code == 200
    assert api.client.get("/entity/db", params={"key": key}, headers=headers).json() == 1


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1,2]", b"{}", b"42", b'{"k": NaN}',
                                  b"\xff\xfe"])
def test_bad_put_bodies_are_400(api: Api, body: bytes) -> None:
    response = api.client.put("/entity/db", content=body,
                              headers={**api.admin(), "Content-Type": "application/json"})
    assert response.status_code == 400, body
    error_of(response)


def test_body_over_one_mebibyte_is_413(api: Api) -> None:
    body = json.dumps({"big": "x" * (1024 * 1024)}).encode()
    response = api.client.put("/entity/db", content=body,
                              headers={**api.admin(), "Content-Type": "application/json"})
    assert response.status_code == 413
    error_of(response)


def test_chunked_body_over_one_mebibyte_is_413(api: Api) -> None:
    def chunks() -> Any:
        yield b'{"big": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    response = api.client.put("/entity/db", content=chunks(),
                              headers={**api.admin(), "Content-Type": "application/json"})
    assert response.status_code == 413


def test_absurdly_deep_documents_are_400_not_a_crash(api: Api) -> None:
    headers = {**api.admin(), "Content-Type": "application/json"}
    for depth in (65, 1000, 200_000):
        body = b'{"k": ' + b"[" * depth + b"]" * depth + b"}"
        response = api.client.put("/entity/db", content=body, headers=headers)
        assert response.status_code == 400 and "deeper" in error_of(response)
    ok = b'{"k": ' + b"[" * 63 + b"]" * 63 + b"}"
    assert api.client.put("/entity/db", content=ok, headers=headers).status_code == 200
    brackets_in_strings = json.dumps({"k": "[" * 5000}).encode()
    assert api.client.put("/entity/db", content=brackets_in_strings,
                          headers=headers).status_code == 200


def test_delete_entity(api: Api) -> None:
    headers = api.admin()
    api.client.put("/entity/db", json={"k": 1}, headers=headers)
    assert api.client.delete("/entity/db?key=k", headers=headers).json() == {"status": "ok"}
    assert api.client.get("/entity/db?key=k", headers=headers).status_code == 404
    assert api.client.delete("/entity/db?key=k", headers=headers).status_code == 404


def test_dry_run_validates_without_writing(api: Api) -> None:
    headers = api.admin()
    response = api.client.put("/entity/db?dry_run=true", json={"k": 1}, headers=headers)
    assert response.status_code == 200 and response.json()["dry_run"] is True
    assert api.client.get("/entity/db?key=k", headers=headers).status_code == 404


def test_read_and_write_permissions(api: Api) -> None:
    reader, writer = api.key_headers("read"), api.key_headers("write")
    assert api.client.put("/entity/db", json={"k": 1}, headers=writer).status_code == 200
    response = api.client.put("/entity/db", json={"k": 2}, headers=reader)
    assert response.status_code == 403 and "write" in error_of(response)
    assert api.client.get("/entity/db?key=k", headers=reader).json() == 1
    assert api.client.get("/entity/db?key=k", headers=writer).status_code == 403
    assert api.client.delete("/entity/db?key=k", headers=reader).status_code == 403
    assert api.client.get("/databases", headers=writer).status_code == 403
    assert api.client.get("/entities/db", headers=writer).status_code == 403
    assert api.client.delete("/entity/db?key=k", headers=writer).status_code == 200


# ── listing ──────────────────────────────────────────────────────────────


def test_entities_are_listed_in_pages(api: Api) -> None:
    headers = api.admin()
    keys = [f"user_{i:03d}" for i in range(25)] + ["other_1", "other_2"]
    api.client.put("/entity/db", json={k: {"k": k} for k in keys}, headers=headers)
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"prefix": "user_", "limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get("/entities/db", params=params, headers=headers).json()
        assert page["database"] == "db" and len(page["keys"]) <= 10
        seen += page["keys"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(k for k in keys if k.startswith("user_"))
    everything = api.client.get("/entities/db", params={"limit": 1000}, headers=headers).json()
    assert everything["keys"] == sorted(keys) and everything["next_cursor"] is None
    assert api.client.get("/entities/empty", headers=headers).json()["keys"] == []


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "cursor=%%%", "cursor=bm9"])
def test_bad_listing_parameters_are_400(api: Api, query: str) -> None:
    response = api.client.get(f"/entities/db?{query}", headers=api.admin())
    assert response.status_code == 400
    error_of(response)


def test_databases_lists_names_and_counts(api: Api) -> None:
    headers = api.admin()
    api.client.put("/entity/alpha", json={"a": 1, "b": 2}, headers=headers)
    api.client.put("/entity/beta", json={"c": 3}, headers=headers)
    databases = api.client.get("/databases", headers=headers).json()["databases"]
    counts = {d["name"]: d["entities"] for d in databases}
    assert counts == {"alpha": 2, "beta": 1}
    assert all(d["kind"] == "entities" for d in databases)


# ── schemas ──────────────────────────────────────────────────────────────

CHAT_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "chat.v1",
    "type": "object",
    "properties": {"messages": {"type": "array", "items": {
        "type": "object",
        "properties": {"role": {"type": "string", "enum": ["user", "assistant", "system"]},
                       "content": {"type": "string"}},
        "required": ["role", "content"]}}},
    "required": ["messages"],
}


def test_schema_lifecycle_and_validation_of_writes(api: Api) -> None:
    admin = api.admin()
    created = api.client.put("/schema/chatdb", json=CHAT_SCHEMA, headers=admin)
    assert created.status_code == 201 and created.json() == {"status": "ok", "id": "chatdb"}
    assert api.client.put("/schema/chatdb", json=CHAT_SCHEMA, headers=admin).status_code == 200
    assert api.client.get("/schema/chatdb", headers=admin).json() == CHAT_SCHEMA
    listed = api.client.get("/admin/schemas", headers=admin).json()["schemas"]
    assert [s["id"] for s in listed] == ["chatdb"] and listed[0]["generated"] is False

    assert api.client.put("/entity/chatdb", json={"s": ENTITY}, headers=admin).status_code == 200
    bad = {"ok": ENTITY, "bad": {"messages": [{"role": "robot", "content": "x"}]}}
    response = api.client.put("/entity/chatdb", json=bad, headers=admin)
    assert response.status_code == 400 and "schema" in error_of(response)
    assert api.client.get("/entity/chatdb?key=ok", headers=admin).status_code == 404  # all or none
    dry = api.client.put("/entity/chatdb?dry_run=true", json={"x": {}}, headers=admin)
    assert dry.status_code == 400 and "messages" in error_of(dry)

    assert api.client.delete("/schema/chatdb", headers=admin).json() == {"status": "ok"}
    assert api.client.get("/schema/chatdb", headers=admin).status_code == 404
    assert api.client.delete("/schema/chatdb", headers=admin).status_code == 404
    assert api.client.put("/entity/chatdb", json={"x": {}}, headers=admin).status_code == 200


@pytest.mark.parametrize("schema", [{"type": 5}, {"required": "x"}, [1], "text",
                                    {"properties": {"a": {"minimum": "zero"}}}])
def test_invalid_schemas_are_refused(api: Api, schema: Any) -> None:
    response = api.client.put("/schema/s", json=schema, headers=api.admin())
    assert response.status_code == 400
    error_of(response)


def test_changing_schemas_needs_admin(api: Api) -> None:
    writer, reader = api.key_headers("read", "write"), api.key_headers("read")
    assert api.client.put("/schema/s", json={"type": "object"}, headers=writer).status_code == 403
    api.client.put("/schema/s", json={"type": "object"}, headers=api.admin())
    assert api.client.delete("/schema/s", headers=writer).status_code == 403
    assert api.client.get("/schema/s", headers=reader).status_code == 200
    assert api.client.get("/admin/schemas", headers=reader).status_code == 200
    assert api.client.get("/admin/schemas", headers=api.key_headers("write")).status_code == 403


def test_bad_schema_ids_are_400(api: Api) -> None:
    admin = api.admin()
    assert api.client.put("/schema/a%2Fb", json={}, headers=admin).status_code == 400
    assert api.client.get("/schema/%2E%2E", headers=admin).status_code == 400


# ── API keys ─────────────────────────────────────────────────────────────


def test_api_key_lifecycle(api: Api) -> None:
    admin = api.admin()
    created = api.client.post("/api/keys", headers=admin,
                              json={"name": "backend", "permissions": ["read", "write"],
                                    "expires_in": "30d"})
    assert created.status_code == 201
    body = created.json()
    secret = body["key"]
    assert secret.startswith("dk_") and body["permissions"] == ["read", "write"]
    assert body["secret"] == secret  # DeltaDatabase's name for it
    assert body["expires_at"] is not None

    listing = api.client.get("/api/keys", headers=admin)
    assert secret not in listing.text and secret.split("_", 2)[2] not in listing.text
    (key,) = listing.json()
    assert "key" not in key and "secret_hash" not in key and key["name"] == "backend"

    login = api.client.post("/api/login", json={"key": secret}).json()
    assert login["client_id"] == "backend" and login["permissions"] == ["read", "write"]
    assert login["expires_at"] <= body["expires_at"]
    token_headers = {"Authorization": "Bearer " + login["token"]}
    assert api.client.get("/api/me", headers=token_headers).json()["api_key_id"] == body["id"]

    assert api.client.delete(f"/api/keys/{body['id']}", headers=admin).json() == {"status": "ok"}
    assert api.client.get("/api/me", headers=token_headers).status_code == 401  # tokens revoked
    assert api.client.post("/api/login", json={"key": secret}).status_code == 401
    assert api.client.delete(f"/api/keys/{body['id']}", headers=admin).status_code == 404
    assert api.client.get("/api/keys", headers=admin).json() == []


@pytest.mark.parametrize("body", [
    {"name": "x", "permissions": ["root"]},
    {"name": "x", "permissions": ["read", "superuser"]},
    {"name": "x", "permissions": []},
    {"name": "x", "permissions": "read"},
    {"name": "", "permissions": ["read"]},
    {"permissions": ["read"]},
    {"name": "x", "permissions": ["read"], "expires_in": "soon"},
    {"name": "x", "permissions": ["read"], "expires_in": -5},
])
def test_bad_api_key_requests_are_400(api: Api, body: dict[str, Any]) -> None:
    response = api.client.post("/api/keys", json=body, headers=api.admin())
    assert response.status_code == 400
    error_of(response)


def test_api_keys_need_admin(api: Api) -> None:
    writer = api.key_headers("read", "write")
    assert api.client.post("/api/keys", json={"name": "x", "permissions": ["read"]},
                           headers=writer).status_code == 403
    assert api.client.get("/api/keys", headers=writer).status_code == 403
    assert api.client.delete("/api/keys/abc", headers=writer).status_code == 403
    assert api.client.get("/api/keys").status_code == 401


def test_admin_api_key_can_manage_keys(api: Api) -> None:
    admin_key_holder = api.key_headers("admin")
    response = api.client.post("/api/keys", json={"name": "y", "permissions": ["read"]},
                               headers=admin_key_holder)
    assert response.status_code == 201


def test_expired_api_key_cannot_log_in(api: Api, engine_url: str) -> None:
    secret = api.client.post("/api/keys", headers=api.admin(), json={
        "name": "short", "permissions": ["read"], "expires_in": 60}).json()["key"]
    engine = sqlalchemy.create_engine(engine_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("update __deltadb_api_keys set expires_at = '2000-01-01T00:00:00Z'")
    engine.dispose()
    assert api.client.post("/api/login", json={"key": secret}).status_code == 401


# ── workers, stats, metrics ──────────────────────────────────────────────


def test_workers_lists_this_process(dev_api: Api) -> None:
    import os

    assert dev_api.client.get("/admin/workers").status_code == 401  # as DeltaDatabase asks
    workers = dev_api.client.get("/admin/workers",
                                 headers=dev_api.login(client_id="ops")).json()
    mine = [w for w in workers if w["this_process"]]
    assert len(mine) == 1 and mine[0]["pid"] == os.getpid()
    assert mine[0]["status"] == "Available"
    assert {"worker_id", "status", "key_id", "last_seen", "tags"} <= set(mine[0])


def test_workers_need_admin(api: Api) -> None:
    assert api.client.get("/admin/workers").status_code == 401
    assert api.client.get("/admin/workers", headers=api.key_headers("read")).status_code == 403
    assert api.client.get("/admin/workers", headers=api.admin()).status_code == 200


def test_stats_for_the_dashboard(api: Api) -> None:
    headers = api.admin()
    api.client.put("/entity/db", json={"a": 1, "b": 2}, headers=headers)
    stats = api.client.get("/admin/stats", headers=headers).json()
    assert stats["health"] == "ok" and stats["databases"] == 1 and stats["entities"] == 2
    assert stats["store_size_bytes"] > 0
    assert set(stats["cache"]) == {"hits", "misses", "hit_rate"}
    assert len(stats["workers"]) >= 1
    assert api.client.get("/admin/stats").status_code == 401


def test_metrics_in_prometheus_format(api: Api) -> None:
    headers = api.admin()
    api.client.put("/entity/db", json={"a": 1, "b": 2, "c": 3}, headers=headers)
    api.client.get("/entity/db?key=a", headers=headers)
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'deltadb_http_requests_total{method="PUT",route="entity",status="200"} 1' in text
    assert 'deltadb_http_request_duration_seconds_bucket{route="entity",le="+Inf"} 2' in text
    for name in ("deltadb_cache_hits_total", "deltadb_cache_misses_total",
                 "deltadb_encryption_failures_total"):
        assert re.search(rf"^{name} \d+$", text, re.M), name
    assert re.search(r"^deltadb_entities 3$", text, re.M)
    for line in text.splitlines():
        sample = re.fullmatch(r"[a-z_]+(\{[^}]*\})? [-+0-9.eInf]+", line)
        assert line.startswith("#") or sample, line


# ── the FastAPI routes behind the fast path behave the same ───────────────


def test_entity_routes_without_the_fast_path(make_api: Any) -> None:
    api = make_api(fast_path=False)
    headers = api.admin()
    assert api.client.put("/entity/db", json={"k": ENTITY}, headers=headers).json() == {
        "status": "ok"}
    assert api.client.get("/entity/db?key=k", headers=headers).json() == ENTITY
    assert api.client.get("/entity/db?key=zz", headers=headers).status_code == 404
    assert api.client.get("/entity/db", headers=headers).status_code == 400
    assert api.client.get("/entity/a%2Fb?key=k", headers=headers).status_code == 400
    assert api.client.put("/entity/db", json={"k": 1}).status_code == 401
    reader = api.key_headers("read")
    assert api.client.put("/entity/db", json={"k": 1}, headers=reader).status_code == 403
    dry = api.client.put("/entity/db?dry_run=1", json={"n": 1}, headers=headers)
    assert dry.json() == {"status": "ok", "dry_run": True}
    too_big = api.client.put("/entity/db", content=b"[" + b" " * (1 << 20) + b"]",
                             headers={**headers, "Content-Type": "application/json"})
    assert too_big.status_code == 413


# ── API keys scoped to databases ─────────────────────────────────────────


def test_api_key_scoped_to_databases(api: Api) -> None:
    admin = api.admin()
    api.client.put("/entity/chat_a", json={"k": 1}, headers=admin)
    api.client.put("/entity/users_raw", json={"k": 2}, headers=admin)
    created = api.client.post("/api/keys", headers=admin, json={
        "name": "chat-only", "permissions": ["read", "write"], "databases": ["chat_*", "extra"]})
    assert created.status_code == 201 and created.json()["databases"] == ["chat_*", "extra"]
    assert api.client.get("/api/keys", headers=admin).json()[0]["databases"] == [
        "chat_*", "extra"]
    headers = api.login(key=created.json()["key"])
    assert api.client.get("/api/me", headers=headers).json()["databases"] == ["chat_*", "extra"]
    assert api.client.get("/entity/chat_a?key=k", headers=headers).json() == 1
    assert api.client.put("/entity/chat_b", json={"k": 3}, headers=headers).status_code == 200
    assert api.client.put("/entity/extra", json={"k": 3}, headers=headers).status_code == 200
    for method, path in (("GET", "/entity/users_raw?key=k"), ("PUT", "/entity/users_raw"),
                         ("DELETE", "/entity/users_raw?key=k"), ("GET", "/entities/users_raw"),
                         ("PUT", "/entity/extra2")):
        response = api.client.request(method, path, headers=headers, json={"k": 0})
        assert response.status_code == 403, (method, path)
        assert "may not use" in error_of(response)
    names = [d["name"] for d in api.client.get("/databases", headers=headers).json()["databases"]]
    assert names == ["chat_a", "chat_b", "extra"]
    assert api.client.get("/admin/stats", headers=headers).json()["databases"] == 3
    api.client.put("/schema/chat_a", json={"type": "integer"}, headers=admin)
    api.client.put("/schema/users_raw", json={"type": "integer"}, headers=admin)
    listed = api.client.get("/admin/schemas", headers=headers).json()["schemas"]
    assert [s["id"] for s in listed] == ["chat_a"]
    assert api.client.get("/schema/chat_a", headers=headers).status_code == 200
    assert api.client.get("/schema/users_raw", headers=headers).status_code == 403


@pytest.mark.parametrize("databases", [[], "chat", ["a/b"], [5], ["..*"]])
def test_bad_database_scopes_are_400(api: Api, databases: Any) -> None:
    response = api.client.post("/api/keys", headers=api.admin(), json={
        "name": "x", "permissions": ["read"], "databases": databases})
    assert response.status_code == 400
