"""compose.yaml with Debian's docker-compose (v1): the default service comes up healthy."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from docker_helpers import BUILD_ENV, IMAGE, REPO, free_port, inspect, wait_healthy


class Compose:
    def __init__(self, secret_files: dict[str, Path]) -> None:
        self.project = f"openchat-test-{secrets.token_hex(4)}"
        self.port = free_port()
        self.env = {
            **BUILD_ENV,
            "OPENCHAT_IMAGE": IMAGE,
            "OPENCHAT_PORT": str(self.port),
            "DELTADB_MASTER_KEY_SECRET": str(secret_files["deltadb_master_key"]),
            "OPENCHAT_SECRET_KEY_SECRET": str(secret_files["openchat_secret_key"]),
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = ["docker-compose", "-f", str(REPO / "compose.yaml"), "-p", self.project, *args]
        done = subprocess.run(command, capture_output=True, text=True, env=self.env,
                              cwd=REPO, timeout=300)
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done


@pytest.fixture
def compose(image: str, secret_files: dict[str, Path]) -> Iterator[Compose]:
    project = Compose(secret_files)
    yield project
    project("down", "--volumes", "--remove-orphans")


def test_the_default_service_comes_up_healthy_on_its_volume(compose: Compose) -> None:
    assert os.access(REPO / "compose.yaml", os.R_OK)
    compose("up", "--detach", "--no-build")
    container = compose("ps", "--quiet", "openchat").stdout.strip()
    wait_healthy(container, timeout=150)
    state = inspect(container)
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    mounts = {m["Destination"]: m for m in state["Mounts"]}
    assert mounts["/data"]["Type"] == "volume"
    assert {"/run/secrets/deltadb_master_key", "/run/secrets/openchat_secret_key"} <= set(mounts)
    answer = httpx.get(f"http://127.0.0.1:{compose.port}/api/health", timeout=10)
    assert answer.json() == {"status": "ok", "database": "ok"}
    config = httpx.get(f"http://127.0.0.1:{compose.port}/api/config", timeout=10).json()
    assert config["mock_llm"] is True
    # The README's check of the store, through the service's own volume and secrets.
    verified = compose("run", "--rm", "openchat", "deltadb", "verify", "/data/openchat")
    assert verified.stdout.startswith("OK: "), verified.stdout
