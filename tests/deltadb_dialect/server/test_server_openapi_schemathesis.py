"""Schemathesis over the entity server's OpenAPI document, against a real server process, with
the admin key and with a read/write key: no answer is a server error. Logging out and deleting
keys would end the run's own token, so those routes are left out."""

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ddb_server_helpers import (
    ADMIN_KEY,
    BACKENDS,
    LiveServer,
    start_server,
    stop_server,
    store_url,
)

from tests.openapi_fuzz import run_schemathesis

SESSION_ENDING = "logout|/api/keys/"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    directory = tmp_path_factory.mktemp("schemathesis-entity")
    live = start_server(
        store_url(BACKENDS[0], directory), directory / "server.log", admin_key=ADMIN_KEY
    )
    yield live, directory
    stop_server(live)


def _post(base: str, path: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "read-write key"])
def test_no_server_errors(server: tuple[LiveServer, Path], role: str) -> None:
    live, directory = server
    token = _post(live.base_url, "/api/login", {"key": ADMIN_KEY})["token"]
    if role != "admin":
        created = _post(
            live.base_url,
            "/api/keys",
            {"name": "fuzz", "permissions": ["read", "write"]},
            token,
        )
        token = _post(live.base_url, "/api/login", {"key": created["key"]})["token"]
    result = run_schemathesis(
        f"{live.base_url}/openapi.json",
        token=token,
        workdir=directory / role.replace(" ", "-"),
        exclude_path_regex=SESSION_ENDING,
    )
    print(role, dict(result.responses), dict(result.failed_checks))
    assert sum(result.responses.values()) > 50, result.output
    assert result.server_errors == [], result.server_errors
    assert result.failed_checks["not_a_server_error"] == 0, result.output
