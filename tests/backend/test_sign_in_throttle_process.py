"""Sign-in throttling is shared by every worker of a real `uvicorn --workers 2`."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD
from fake_openai_server import free_port
from test_uvicorn_process import REPO, service_env, wait_until_up

from backend.core.config import settings


@pytest.mark.slow
def test_failures_counted_by_one_worker_hold_in_the_other(tmp_path: Path) -> None:
    env = service_env(tmp_path)
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=env, check=True, capture_output=True)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    # A new connection for every request, so the two workers share the requests between them.
    fresh = httpx.Limits(max_keepalive_connections=0)
    try:
        wait_until_up(base, process)
        with httpx.Client(base_url=base, timeout=10, limits=fresh) as http:
            user = {"username": "wkr", "email": "wkr@example.com", "password": DEFAULT_PASSWORD}
            assert http.post("/api/auth/register", json=user).status_code == 201
            for _ in range(settings.LOGIN_FREE_FAILURES):
                wrong = {"username": "wkr@example.com", "password": "wrong-password"}
                assert http.post("/api/auth/login", json=wrong).status_code == 401
            right = {"username": "wkr", "password": DEFAULT_PASSWORD}
            refused = http.post("/api/auth/login", json=right)
            assert refused.status_code == 429, refused.text
            assert refused.headers["Retry-After"] == "1"
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert output.count("Started server process") == 2, output
