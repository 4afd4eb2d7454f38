"""The real thing: `alembic upgrade head` and `uvicorn backend.main:app` as separate processes."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD, parse_sse
from conftest import TEST_DB
from fake_openai_server import free_port

REPO = Path(__file__).resolve().parents[2]


def service_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path}/app.db" if TEST_DB == "sqlite" else f"deltadb:///{tmp_path}/app"
    return {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO), "LOG_LEVEL": "INFO"}


def start_uvicorn(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port)]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90  # a loaded CI machine imports the app slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode())  # type: ignore[union-attr]
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


@pytest.mark.slow
def test_migrate_then_serve_register_chat_and_log_out(tmp_path: Path) -> None:
    env, port = service_env(tmp_path), free_port()
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=env, check=True, capture_output=True)
    process = start_uvicorn(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        with httpx.Client(base_url=base, timeout=10) as http:
            user = {"username": "uvi", "email": "uvi@example.com", "password": DEFAULT_PASSWORD}
            assert http.post("/api/auth/register", json=user).status_code == 201
            login = http.post(
                "/api/auth/login", json={"username": "uvi", "password": DEFAULT_PASSWORD}
            )
            csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
            uuid = http.post("/api/conversations", json={}, headers=csrf).json()["uuid"]
            streamed = http.post(
                f"/api/conversations/{uuid}/messages",
                json={"content": "secret question text"},
                headers={**csrf, "Accept": "text/event-stream"},
            )
            events = parse_sse(streamed.text)
            assert events[0][0] == "start" and events[-1][0] == "done"
            assert http.get("/mock-openai/v1/models").status_code == 200
            assert http.post("/api/auth/logout", headers=csrf).status_code == 200
            assert http.get("/api/auth/me").status_code == 401
            assert http.get("/mock-openai/v1/models").status_code == 401  # signed out
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    # Structured logs, and the question never appears in them.
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert any('"path": "/api/conversations/{id}/messages"' in line for line in lines)
    assert "secret question text" not in output and DEFAULT_PASSWORD not in output


@pytest.mark.slow
def test_refuses_to_start_on_an_unmigrated_database(tmp_path: Path) -> None:
    process = start_uvicorn(service_env(tmp_path), free_port())
    output = process.communicate(timeout=30)[0].decode()
    assert process.returncode != 0
    assert "alembic upgrade head" in output
