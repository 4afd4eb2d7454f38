"""A real `uvicorn backend.main:app` process on a freshly migrated store, for tests of a server's
behaviour (connections, timing, other clients), started with `make run`'s limits."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from conftest import TEST_DB
from fake_openai_server import free_port

REPO = Path(__file__).resolve().parents[2]


def make_run_limits() -> list[str]:
    """The uvicorn options `make run` passes (read from the Makefile, so the two never drift)."""
    printed = subprocess.run(
        [
            "make",
            "-s",
            "--no-print-directory",
            "--eval",
            "print-limits: ; @echo $(UVICORN_LIMITS)",
            "print-limits",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return printed.stdout.split()


def service_env(workdir: Path, **extra: str) -> dict[str, str]:
    url = f"sqlite:///{workdir}/app.db" if TEST_DB == "sqlite" else f"deltadb:///{workdir}/app"
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO), "LOG_LEVEL": "WARNING"}
    return {**env, **extra}


@dataclass(frozen=True)
class LiveProcess:
    base: str  # http://127.0.0.1:PORT
    pid: int


@contextmanager
def live_process(workdir: Path, *, env: dict[str, str] | None = None) -> Iterator[LiveProcess]:
    """Migrate, start uvicorn as `make run` does, yield its address and pid, stop it."""
    env = env or service_env(workdir)
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=env, check=True, capture_output=True)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port)]
    log = open(workdir / "uvicorn.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [*command, *make_run_limits()], cwd=REPO, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, workdir)
        yield LiveProcess(base=base, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a client still holds a connection open
            process.kill()
            process.wait()
        log.close()


@contextmanager
def live_service(workdir: Path, *, env: dict[str, str] | None = None) -> Iterator[str]:
    """`live_process` for tests that need only its base URL."""
    with live_process(workdir, env=env) as process:
        yield process.base


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


def _wait_until_up(base: str, process: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 90  # a loaded CI machine imports the app slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((workdir / "uvicorn.log").read_text())
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")
