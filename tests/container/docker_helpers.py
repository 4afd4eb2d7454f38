"""Docker from the tests: the local base, the image build, containers and volumes, cleaned up."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
BASE_SCRIPT = REPO / "docker" / "build-local-base.sh"
# Debian's client, matching Debian's daemon (another `docker` may come first on PATH).
DOCKER = "/usr/bin/docker"
IMAGE = "openchat:test"
IMAGE_UID = 10001
LABEL = "org.opencontainers.image.title=open-chat"
# The classic builder: BuildKit needs buildx, which Debian's docker.io lacks.
BUILD_ENV = {**os.environ, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}


def docker(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                          env=BUILD_ENV)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


@dataclass
class DockerSetup:
    base_image: str
    started_dockerd_pid: int | None


def prepare_docker() -> DockerSetup:
    """Run the base script: packages, dockerd, the cached bookworm base."""
    done = subprocess.run(["bash", str(BASE_SCRIPT)], capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        raise AssertionError(f"{BASE_SCRIPT.name} failed:\n{done.stderr[-4000:]}")
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    pid = values.get("dockerd-started-pid")
    return DockerSetup(base_image=values["base-image"],
                       started_dockerd_pid=int(pid) if pid else None)


def stop_dockerd(pid: int) -> None:
    """Stop the dockerd the base script started (and, with it, its containerd)."""
    os.kill(pid, 15)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)


def build_image(base_image: str) -> None:
    base = ["--build-arg", f"BASE_IMAGE={base_image}"]
    # The build stage tagged too, so that pruning earlier, now untagged builds of both stages
    # keeps the latest layer cache (the requirements' layer above all).
    docker("build", *base, "--target", "build", "-t", f"{IMAGE}-build", str(REPO), timeout=900)
    docker("build", *base, "--label", LABEL, "-t", IMAGE, str(REPO), timeout=900)
    for label in (LABEL, f"{LABEL}-build"):
        docker("image", "prune", "--force", "--filter", f"label={label}", check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_secret_files(directory: Path) -> dict[str, Path]:
    """A master key made by the image's own `deltadb keygen`, and a SECRET_KEY; owned by the
    image's user and mode 0400, as an operator would prepare Docker secrets."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"deltadb_master_key": directory / "deltadb_master_key",
             "openchat_secret_key": directory / "openchat_secret_key",
             "postgres_password": directory / "postgres_password"}
    files["deltadb_master_key"].write_text(docker("run", "--rm", IMAGE, "deltadb", "keygen").stdout)
    files["openchat_secret_key"].write_text(secrets.token_urlsafe(32) + "\n")
    files["postgres_password"].write_text(secrets.token_hex(24) + "\n")
    for path in files.values():
        os.chown(path, IMAGE_UID, IMAGE_UID)
        path.chmod(0o400)
    return files


@dataclass
class Containers:
    """Names of everything a test made, removed at teardown."""

    prefix: str = field(default_factory=lambda: f"openchat-test-{secrets.token_hex(4)}")
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def volume(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        docker("volume", "create", name)
        self.volumes.append(name)
        return name

    def run(self, role: str, *options: str, command: tuple[str, ...] = (),
            image: str = IMAGE) -> str:
        name = f"{self.prefix}-{role}-{len(self.containers)}"
        docker("run", "--detach", "--name", name, *options, image, *command)
        self.containers.append(name)
        return name

    def remove_all(self) -> None:
        """Remove what the test made; a leftover is a failure, not a silent leak."""
        failures = []
        for kind, names in (("container", self.containers), ("volume", self.volumes)):
            for name in names:
                if not removed(kind, name):
                    failures.append(f"{kind} {name}")
        assert not failures, f"could not remove: {failures}"


def removed(kind: str, name: str, *, attempts: int = 5) -> bool:
    remove = ["rm", "--force", "--volumes"] if kind == "container" else ["volume", "rm", "-f"]
    for _ in range(attempts):
        docker(*remove, name, check=False)
        if docker(kind, "inspect", name, check=False).returncode != 0:
            return True
        time.sleep(1)
    return False


def secret_mounts(files: dict[str, Path]) -> list[str]:
    mounts: list[str] = []
    for name, path in files.items():
        mounts += ["-v", f"{path}:/run/secrets/{name}:ro"]
    return mounts


def inspect(name: str) -> dict:
    return json.loads(docker("inspect", name).stdout)[0]


def wait_healthy(name: str, *, timeout: float = 120) -> None:
    """Until Docker's own HEALTHCHECK says healthy; the container's log if it dies."""
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        state = inspect(name)["State"]
        if not state["Running"]:
            logs = docker("logs", name, check=False)
            raise AssertionError(f"{name} exited {state['ExitCode']}:\n{logs.stdout}{logs.stderr}")
        if state.get("Health", {}).get("Status") == "healthy":
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} not healthy within {timeout} s: {state.get('Health')}")


def wait_answering(base: str, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base} did not answer within {timeout} s")


def volume_files(volume: str) -> Iterator[Path]:
    """Every file in a volume, read from the host side (the tests run as root)."""
    mountpoint = Path(json.loads(docker("volume", "inspect", volume).stdout)[0]["Mountpoint"])
    assert mountpoint.is_dir(), mountpoint
    yield from (path for path in mountpoint.rglob("*") if path.is_file())


def plaintext_found(volume: str, needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle found in any file of the volume."""
    found = []
    for path in volume_files(volume):
        data = path.read_bytes()
        found += [(str(path), n) for n in needles if n.encode() in data]
    return found
