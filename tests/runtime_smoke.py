"""Every documented entry point, run with nothing but `pip install -r requirements.txt`.

`make test` runs this with the interpreter of a venv that has only the runtime requirements
(`.venv-runtime`), from the checkout, so a runtime path that works only because a test or lint
package happens to bring a dependency (greenlet came with Playwright once) fails here. It uses
the standard library and the runtime requirements only: no pytest.

    .venv-runtime/bin/python tests/runtime_smoke.py
"""

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The checkout, not tests/ (whose deltadb_dialect/ holds tests), is where the code is imported from.
sys.path[0] = str(REPO)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*argv: str, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    if done.returncode:
        raise SystemExit(
            f"FAILED {' '.join(argv)} ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def _request(url: str, *, body: Mapping[str, object] | None = None, token: str = "") -> object:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=30) as reply:
        raw = reply.read()
    return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()


def _wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"FAILED: the server exited ({proc.returncode}) before {url} answered")
        try:
            _request(url)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise SystemExit(f"FAILED: {url} did not answer within 60 s")


def _serving(
    argv: list[str], *, env: dict[str, str], ready: str, check: Callable[[str], None]
) -> None:
    proc = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(ready, proc)
        check(ready.split("/", 3)[0] + "//" + ready.split("/", 3)[2])
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def engines(store: Path, key_file: Path) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.ext.asyncio import create_async_engine

    import deltadb_dialect  # noqa: F401  (registers deltadb://)

    url = f"deltadb:///{store}?key_file={key_file}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        connection.execute(text("INSERT INTO notes (body) VALUES ('sync')"))
    engine.dispose()

    async def read_async() -> list[str]:
        async_engine = create_async_engine(url.replace("deltadb://", "deltadb+aiodeltadb://"))
        async with async_engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('async')"))
            rows = (await connection.execute(text("SELECT body FROM notes ORDER BY id"))).all()
        await async_engine.dispose()
        return [row[0] for row in rows]

    assert asyncio.run(read_async()) == ["sync", "async"]
    # The PostgreSQL driver loads (the server itself is exercised by the PostgreSQL test run).
    assert create_engine("postgresql+psycopg://smoke@127.0.0.1/smoke").dialect.dbapi is not None


def chat_service(env: dict[str, str]) -> None:
    port = _free_port()
    argv = [str(BIN / "uvicorn"), "backend.main:app", "--host", "127.0.0.1", "--port", str(port)]

    def check(base: str) -> None:
        assert _request(f"{base}/api/health/live") == {"status": "ok"}
        account = {"username": "smoke", "email": "smoke@example.com", "password": "smoke-password"}
        _request(f"{base}/api/auth/register", body=account)
        login = _request(
            f"{base}/api/auth/login", body={"username": "smoke", "password": "smoke-password"}
        )
        token = login["access_token"]  # type: ignore[index]
        answer = _request(f"{base}/chat/message", body={"message": "Hello"}, token=token)
        assert answer["status"] == "Success" and "Hello" in answer["response"], answer  # type: ignore[index]
        assert "swagger-ui-bundle.js" in str(_request(f"{base}/docs"))

    _serving(argv, env=env, ready=f"http://127.0.0.1:{port}/api/health/ready", check=check)


def entity_server(store: Path, env: dict[str, str]) -> None:
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "deltadb_dialect",
        "serve",
        "--store",
        str(store),
        "--port",
        str(port),
    ]

    def check(base: str) -> None:
        assert _request(f"{base}/health")["status"] == "ok"  # type: ignore[index]

    _serving(argv, env=env, ready=f"http://127.0.0.1:{port}/health", check=check)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="openchat-smoke-") as tmp:
        root = Path(tmp)
        key_file = root / "master.key"
        env = {
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": tmp,
            "PYTHONPATH": str(REPO),
            "ENVIRONMENT": "test",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "MOCK_OPENAI": "true",
            "LOG_LEVEL": "WARNING",
        }
        _run(sys.executable, "-m", "deltadb_dialect", "keygen", "--out", str(key_file), env=env)
        engines(root / "notes", key_file)
        store = root / "openchat"
        env["DATABASE_URL"] = f"deltadb:///{store}?key_file={key_file}"
        _run(str(BIN / "alembic"), "upgrade", "head", env=env)
        chat_service(env)
        _run(
            sys.executable,
            "-m",
            "backend.cli",
            "archive-idle",
            "--days",
            "30",
            "--dry-run",
            env=env,
        )
        tools = [sys.executable, "-m", "deltadb_dialect"]
        keyed = ["--key-file", str(key_file)]
        _run(*tools, "verify", str(store), *keyed, env=env)
        _run(*tools, "info", str(store), *keyed, env=env)
        _run(*tools, "backup", str(store), str(root / "backup"), *keyed, env=env)
        entity_server(root / "entities", {**env, "DELTADB_MASTER_KEY": secrets.token_hex(32)})
        import prometheus_client  # noqa: F401  (/metrics)
    print("runtime smoke: 6 passed, 0 failed")


if __name__ == "__main__":
    main()
