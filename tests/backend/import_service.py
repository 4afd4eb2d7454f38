"""A real uvicorn for import tests, whose process the test holds (to kill it, to read its
memory), on a store migrated once and kept across restarts."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from live_server import REPO, _wait_until_up, make_run_limits, service_env


def migrated_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The service's environment on a migrated store, with a SECRET_KEY that outlives a
    restart (the encrypted upload's key derives from it)."""
    env = service_env(workdir, SECRET_KEY="a-secret-key-for-this-test-only-0123456789", **extra)
    env.setdefault("DELTADB_MASTER_KEY", os.urandom(32).hex())
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=env, check=True, capture_output=True)
    return env


@contextmanager
def server(workdir: Path, env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """uvicorn as `make run` starts it; the caller may kill it (then nothing is left to stop)."""
    command = [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port)]
    with open(workdir / "uvicorn.log", "ab") as log:
        process = subprocess.Popen(
            [*command, *make_run_limits()], cwd=REPO, env=env, stdout=log, stderr=log
        )
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", process, workdir)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
