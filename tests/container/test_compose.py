"""compose.yaml with Debian's docker-compose (v1): the default service comes up healthy, and the
`cluster` profile's app servers share one PostgreSQL-backed store behind nginx."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from docker_helpers import (
    BUILD_ENV,
    IMAGE,
    REPO,
    docker,
    free_port,
    inspect,
    wait_answering,
    wait_healthy,
)

TEST_IMAGES = Path(__file__).parent / "images"
POSTGRES_IMAGE, NGINX_IMAGE = "openchat-test-postgres:15", "openchat-test-nginx:1.22"
PASSWORD = "compose-cluster-Pass-1"


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
            "POSTGRES_PASSWORD_SECRET": str(secret_files["postgres_password"]),
            "POSTGRES_IMAGE": POSTGRES_IMAGE,
            "NGINX_IMAGE": NGINX_IMAGE,
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
    project("--profile", "cluster", "down", "--volumes", "--remove-orphans")


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


@pytest.fixture(scope="module")
def cluster_images(docker_setup: object, image: str) -> None:
    """PostgreSQL and nginx built on the local base (the users' compose pulls the official
    images; this machine has no registry)."""
    base = docker_setup.base_image  # type: ignore[attr-defined]
    for tag, context in ((POSTGRES_IMAGE, "postgres"), (NGINX_IMAGE, "nginx")):
        docker("build", "--build-arg", f"BASE_IMAGE={base}", "-t", tag,
               str(TEST_IMAGES / context), timeout=900)


def test_the_cluster_profile_shares_one_postgresql_store_between_two_app_servers(
    compose: Compose, cluster_images: None
) -> None:
    compose("--profile", "cluster", "up", "--detach", "--no-build", "--scale",
            "openchat-node=2", "postgres", "openchat-node")
    nodes = compose("--profile", "cluster", "ps", "--quiet", "openchat-node").stdout.split()
    assert len(nodes) == 2
    for node in nodes:
        wait_healthy(node, timeout=180)
    compose("--profile", "cluster", "up", "--detach", "--no-build", "--no-deps", "proxy")
    base = f"http://127.0.0.1:{compose.port}"
    wait_answering(base)

    account = {"username": "erin", "email": "erin@example.org", "password": PASSWORD}
    assert httpx.post(f"{base}/api/auth/register", json=account, timeout=30).status_code == 201
    # Through the proxy, requests go to either node; straight to each node, both see the chat.
    with httpx.Client(base_url=base, timeout=60) as http:
        login = http.post("/api/auth/login", json={"username": "erin", "password": PASSWORD})
        token = login.json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        uuid = http.post("/api/conversations", json={"title": "on two servers"}).json()["uuid"]
        sent = http.post(f"/api/conversations/{uuid}/messages", json={"content": "canary-kiwi"})
        assert sent.status_code == 201, sent.text
    for node in nodes:
        address = _address(node)
        seen = httpx.get(f"http://{address}:8000/api/conversations/{uuid}/messages",
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert seen.status_code == 200, seen.text
        assert "canary-kiwi" in seen.text

    # PostgreSQL holds ciphertext only: its dump has neither the user nor the message.
    postgres = compose("--profile", "cluster", "ps", "--quiet", "postgres").stdout.strip()
    dump = docker("exec", postgres, "pg_dump", "-U", "openchat", "openchat", timeout=120).stdout
    assert "deltadb_records" in dump
    for needle in ("canary-kiwi", "erin@example.org", "on two servers", "conversations"):
        assert needle not in dump, needle


def _address(container: str) -> str:
    networks = inspect(container)["NetworkSettings"]["Networks"]
    return str(next(iter(networks.values()))["IPAddress"])
