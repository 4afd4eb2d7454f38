"""alembic and the server log in one format, and the development SECRET_KEY warning is said once."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fake_openai_server import free_port

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_migration_and_server_logs_share_one_json_format(tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    keygen = [sys.executable, "-m", "deltadb_dialect", "keygen", "--out", str(key)]
    subprocess.run(keygen, check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DELTADB_MASTER_KEY")}
    env.update(
        ENVIRONMENT="development",  # with the stand-in SECRET_KEY: warned about, once
        DATABASE_URL=f"deltadb:///{tmp_path}/store?key_file={key}",
        PYTHONPATH=str(REPO),
        LOG_LEVEL="info",
    )
    migrate = subprocess.run(
        [str(BIN / "alembic"), "-c", str(REPO / "alembic.ini"), "upgrade", "head"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "uvicorn"), "backend.main:app", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health/live").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    lines = [line for line in (migrate.stdout + out).splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"time", "level", "logger", "event"} <= set.intersection(*(set(e) for e in entries))
    assert any(e["logger"].startswith("alembic") for e in entries)
    assert any(e["logger"].startswith("uvicorn") for e in entries)
    warnings = [e for e in entries if "SECRET_KEY" in e["event"]]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"
    assert "SECRET_KEY" not in migrate.stderr + err
