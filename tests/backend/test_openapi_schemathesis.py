"""Schemathesis over the chat service's OpenAPI document, against a real uvicorn, as the admin
and as a user: no answer is a server error. Routes that end the session (logout, password
change, signing out everywhere) are left out so the token lives through the run."""

from pathlib import Path

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD
from live_server import live_service, service_env

from tests.openapi_fuzz import run_schemathesis

SESSION_ENDING = "logout|password|sign-out|sessions"
ADMIN = {"username": "fuzzadmin", "password": "fuzz admin password"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    workdir = tmp_path_factory.mktemp("schemathesis")
    env = service_env(workdir, ADMIN_USERNAME=ADMIN["username"], ADMIN_PASSWORD=ADMIN["password"])
    with live_service(workdir, env=env) as base:
        yield base, workdir


def _token(base: str, credentials: dict[str, str]) -> str:
    response = httpx.post(f"{base}/api/auth/login", json=credentials, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.mark.slow
# The user's run first: the admin's fuzzing may turn registration off, throttle it, or
# change and delete users, and would leave the user's run testing that instead.
@pytest.mark.parametrize("role", ["user", "admin"])
def test_no_server_errors(service: tuple[str, Path], role: str) -> None:
    base, workdir = service
    if role == "admin":
        token = _token(base, ADMIN)
    else:
        user = {"username": "fuzzuser", "email": "fuzz@example.com", "password": DEFAULT_PASSWORD}
        registered = httpx.post(f"{base}/api/auth/register", json=user, timeout=30)
        assert registered.status_code == 201, registered.text
        token = _token(base, {"username": "fuzzuser", "password": DEFAULT_PASSWORD})
    result = run_schemathesis(
        f"{base}/openapi.json",
        token=token,
        workdir=workdir / role,
        exclude_path_regex=SESSION_ENDING,
    )
    print(role, dict(result.responses), dict(result.failed_checks))
    assert sum(result.responses.values()) > 50, result.output
    assert result.server_errors == [], result.server_errors
    assert result.failed_checks["not_a_server_error"] == 0, result.output
