"""Schemas are untrusted work: no remote references, linear-time patterns, recursion as 400,
and validation outside the write transaction (in-process, and against a real server)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from ddb_server_helpers import ADMIN_KEY, BACKENDS, Api, start_server, stop_server, store_url

Headers = dict[str, str]
EVIL_PATTERN = {"type": "object", "properties": {"v": {"type": "string", "pattern": "^(a+)+$"}}}
EVIL_VALUE = "a" * 30 + "!"  # exponential for a backtracking engine


class Sink:
    """A loopback HTTP server that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                sink.requests.append(self.path)
                body = json.dumps({"type": "string"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def admin(api: Api) -> dict[str, str]:
    """A login token of the admin key (these checks do not depend on keys as bearer tokens)."""
    return api.admin()


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.server.shutdown()


def store_schema_unchecked(engine_url: str, schema_id: str, schema: Any) -> None:
    """Write a schema row directly, as a store made before these checks may hold one."""
    engine = sqlalchemy.create_engine(engine_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO __deltadb_schemas (id, schema, updated_at) "
                             "VALUES (?, ?, '2026-01-01T00:00:00Z')",
                             (schema_id, json.dumps(schema)))
    engine.dispose()


# ── $ref ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("ref", ["{url}/x.json", "{url}/x.json#/definitions/a", "other.json",
                                 "#/definitions/missing"])
def test_references_outside_the_schema_are_refused_and_never_fetched(
    api: Api, admin: Headers, sink: Sink, ref: str
) -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": ref.format(url=sink.url)}}}
    response = api.client.put("/schema/refs", json=schema, headers=admin)
    assert response.status_code == 400 and "$ref" in response.json()["error"]
    assert sink.requests == []


def test_references_inside_the_schema_work(api: Api, admin: Headers) -> None:
    schema = {"definitions": {"name": {"type": "string", "maxLength": 3}},
              "type": "object", "properties": {"n": {"$ref": "#/definitions/name"}},
              "items": {"$ref": "http://json-schema.org/draft-07/schema#"}}
    assert api.client.put("/schema/refs", json=schema, headers=admin).status_code == 201
    assert api.client.put("/entity/refs", json={"a": {"n": "abc"}}, headers=admin).status_code \
        == 200
    bad = api.client.put("/entity/refs", json={"a": {"n": "abcd"}}, headers=admin)
    assert bad.status_code == 400 and "n:" in bad.json()["error"]


def test_a_stored_schema_with_a_remote_reference_fetches_nothing(
    api: Api, admin: Headers, sink: Sink, engine_url: str
) -> None:
    store_schema_unchecked(engine_url, "legacy", {"properties": {"a": {"$ref": sink.url}}})
    response = api.client.put("/entity/legacy", json={"k": {"a": 1}}, headers=admin)
    assert response.status_code == 400 and "reference" in response.json()["error"]
    assert sink.requests == []


# ── recursion and format: regex ──────────────────────────────────────────


@pytest.mark.parametrize("schema", [
    {"$ref": "#"},
    {"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}},
     "$ref": "#/definitions/a"},
    {"anyOf": [{"$ref": "#"}]},
])
def test_schemas_that_recurse_without_end_are_400(api: Api, admin: Headers, schema: Any) -> None:
    response = api.client.put("/schema/loop", json=schema, headers=admin)
    assert response.status_code == 400 and "itself" in response.json()["error"]


def test_a_stored_recursive_schema_makes_writes_400_not_500(
    api: Api, admin: Headers, engine_url: str
) -> None:
    store_schema_unchecked(engine_url, "loop", {"$ref": "#"})
    response = api.client.put("/entity/loop", json={"k": {"a": 1}}, headers=admin)
    assert response.status_code == 400 and "recurses" in response.json()["error"]


def test_a_recursive_schema_that_terminates_is_fine(api: Api, admin: Headers) -> None:
    tree = {"type": "object", "properties": {"children": {"type": "array",
                                                          "items": {"$ref": "#"}}}}
    assert api.client.put("/schema/tree", json=tree, headers=admin).status_code == 201
    doc = {"children": [{"children": [{"children": []}]}]}
    assert api.client.put("/entity/tree", json={"t": doc}, headers=admin).status_code == 200


def test_format_regex_with_deep_parentheses_is_400(api: Api, admin: Headers) -> None:
    schema = {"type": "object", "properties": {"re": {"type": "string", "format": "regex"}}}
    assert api.client.put("/schema/rx", json=schema, headers=admin).status_code == 201
    response = api.client.put("/entity/rx", json={"k": {"re": "(" * 50000}}, headers=admin)
    assert response.status_code == 400 and "re:" in response.json()["error"]
    assert api.client.put("/entity/rx", json={"k": {"re": "^a+$"}}, headers=admin).status_code \
        == 200


@pytest.mark.parametrize("pattern", ["(" * 50000, r"(a)\1", "(?=a)b", "(?<!x)y", "[", "a{99999}"])
def test_patterns_without_a_linear_time_engine_are_refused(
    api: Api, admin: Headers, pattern: str
) -> None:
    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}}}
    response = api.client.put("/schema/p", json=schema, headers=admin)
    assert response.status_code == 400, response.text
    as_keys = {"type": "object", "patternProperties": {pattern: {}}}
    assert api.client.put("/schema/p", json=as_keys, headers=admin).status_code == 400


def test_pattern_properties_and_additional_properties_run_in_linear_time(
    api: Api, admin: Headers
) -> None:
    schema = {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}},
              "additionalProperties": False}
    assert api.client.put("/schema/pp", json=schema, headers=admin).status_code == 201
    started = time.monotonic()
    response = api.client.put("/entity/pp", json={"k": {EVIL_VALUE: 1}}, headers=admin)
    assert response.status_code == 400 and time.monotonic() - started < 2


# ── ReDoS against a real server ──────────────────────────────────────────


def test_catastrophic_pattern_is_answered_at_once_in_process(api: Api, admin: Headers) -> None:
    assert api.client.put("/schema/evil", json=EVIL_PATTERN, headers=admin).status_code == 201
    started = time.monotonic()
    response = api.client.put("/entity/evil", json={"k": {"v": EVIL_VALUE}}, headers=admin)
    assert response.status_code == 400 and time.monotonic() - started < 2
    assert api.client.put("/entity/evil", json={"k": {"v": "aaaa"}}, headers=admin).status_code \
        == 200


def test_a_redos_schema_does_not_stall_other_clients(tmp_path: Path) -> None:
    """An attacker writes values that backtracking engines take minutes over; a second client
    times its own requests meanwhile."""
    server = start_server(store_url(BACKENDS[0], tmp_path), tmp_path / "log", admin_key=ADMIN_KEY)
    try:
        base = server.base_url
        token = httpx.post(base + "/api/login", json={"key": ADMIN_KEY}).json()["token"]
        admin = {"Authorization": "Bearer " + token}
        assert httpx.put(base + "/schema/evil", json=EVIL_PATTERN, headers=admin).status_code \
            == 201
        httpx.put(base + "/entity/other", json={"k": {"n": 1}}, headers=admin)
        attacks: list[int] = []

        def attack() -> None:
            with httpx.Client(timeout=60) as client:
                for _ in range(5):
                    attacks.append(client.put(base + "/entity/evil", headers=admin,
                                              json={"k": {"v": EVIL_VALUE}}).status_code)

        attacker = threading.Thread(target=attack)
        attacker.start()
        slowest = 0.0
        with httpx.Client(timeout=60) as client:
            while attacker.is_alive() or not attacks:
                started = time.monotonic()
                assert client.get(base + "/entity/other?key=k", headers=admin).status_code == 200
                assert client.put(base + "/entity/other", headers=admin,
                                  json={"k": {"n": 2}}).status_code == 200
                slowest = max(slowest, time.monotonic() - started)
        attacker.join()
        assert attacks == [400] * 5
        assert slowest < 1.0, f"another client waited {slowest:.1f} s"
    finally:
        stop_server(server)
