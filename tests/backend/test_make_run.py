"""`make run` as a user runs it: it serves, and Ctrl-C or SIGTERM stop it cleanly."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fake_openai_server import free_port

REPO = Path(__file__).resolve().parents[2]


def _make_run(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DELTADB_MASTER_KEY")}
    env["LOG_LEVEL"] = "info"
    command = [
        "make",
        "-s",
        "run",
        f"DATA_DIR={tmp_path}/data",
        f"KEY_FILE={tmp_path}/key",
        f"PORT={port}",
    ]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
    )


def _wait_ready(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError("make run did not become ready")


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_make_run_serves_and_stops_cleanly(tmp_path: Path, stop: str) -> None:
    port = free_port()
    process = _make_run(tmp_path, port)
    try:
        _wait_ready(port, process)
        if stop == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        else:
            os.kill(process.pid, signal.SIGTERM)  # a service manager stopping make
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "Traceback" not in output
    assert "Application shutdown complete." in output and "Finished server process" in output
    assert f"master key file: {tmp_path}/key" in output
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/api/health/live", timeout=2)
