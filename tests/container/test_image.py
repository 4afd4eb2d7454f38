"""The image, run as a self-hoster would: chat, restart on the same volume, verify, no plaintext."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from docker_helpers import (
    IMAGE,
    IMAGE_UID,
    Containers,
    docker,
    free_port,
    inspect,
    plaintext_found,
    secret_mounts,
    wait_answering,
    wait_healthy,
)

PASSWORD = "correct horse battery staple"
# Fast health checks for the tests; the command checked is the image's own.
HEALTH_FAST = ["--health-interval", "1s", "--health-start-period", "60s"]


def run_app(containers: Containers, volume: str, secret_files: dict[str, Path], port: int,
            *extra: str) -> str:
    """The service as the README runs it: read-only root, tmpfs /tmp, a loopback port."""
    return containers.run(
        "app", "--read-only", "--tmpfs", "/tmp", "-p", f"127.0.0.1:{port}:8000",
        "-v", f"{volume}:/data", *secret_mounts(secret_files), *HEALTH_FAST, *extra)


def sign_in(base: str, username: str) -> httpx.Client:
    login = httpx.post(f"{base}/api/auth/login",
                       json={"username": username, "password": PASSWORD}, timeout=30)
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    return httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"})


def test_chat_survives_a_new_container_and_the_volume_holds_no_plaintext(
    containers: Containers, secret_files: dict[str, Path]
) -> None:
    volume, port = containers.volume("data"), free_port()
    base = f"http://127.0.0.1:{port}"
    marker = secrets.token_hex(6)
    username, email = f"carol{marker}", f"carol.{marker}@example.org"
    question = f"What does the lighthouse keeper {marker} keep in the blue tin box?"

    first = run_app(containers, volume, secret_files, port)
    wait_healthy(first)
    account = {"username": username, "email": email, "password": PASSWORD,
               "full_name": f"Carol {marker}"}
    assert httpx.post(f"{base}/api/auth/register", json=account, timeout=30).status_code == 201
    with sign_in(base, username) as http:
        uuid = http.post("/api/conversations", json={}).json()["uuid"]
        asked = http.post(f"/api/conversations/{uuid}/messages", json={"content": question})
        assert asked.status_code == 201, asked.text
        answer = asked.json()["assistant_message"]["content"]
        assert answer and asked.json()["assistant_message"]["response"]["finish_reason"]

    # A new container on the same volume: the conversation lives in the store, not the layer.
    docker("rm", "--force", first)
    second = run_app(containers, volume, secret_files, port)
    wait_healthy(second)
    with sign_in(base, username) as http:
        listed = http.get("/api/conversations").json()
        assert [c["uuid"] for c in listed["data"]] == [uuid]
        messages = http.get(f"/api/conversations/{uuid}/messages").json()["data"]
        assert [m["content"] for m in messages] == [question, answer]
    docker("stop", second)

    verified = docker("run", "--rm", "-v", f"{volume}:/data", *secret_mounts(secret_files),
                      IMAGE, "deltadb", "verify", "/data/openchat", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK: "), verified.stdout

    needles = [question, marker, username, email, answer[:40]]
    assert plaintext_found(volume, needles) == []


def test_the_scan_finds_plaintext_where_there_is_some(containers: Containers) -> None:
    # The check above can fail: the same scan over a volume holding the text finds it.
    volume = containers.volume("plain")
    docker("run", "--rm", "-v", f"{volume}:/data", "--entrypoint", "sh", IMAGE, "-c",
           "echo 'a question kept in clear' > /data/clear.txt")
    assert plaintext_found(volume, ["kept in clear"]) != []


def test_runs_as_a_non_root_user_on_a_read_only_root_without_compilers(
    containers: Containers, secret_files: dict[str, Path]
) -> None:
    config = inspect(IMAGE)["Config"]
    assert config["User"] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert config["Healthcheck"]["Test"] == ["CMD", "/opt/venv/bin/python",
                                             "/app/docker/healthcheck.py"]
    name = run_app(containers, containers.volume("data"), secret_files, free_port())
    wait_healthy(name)
    # The check asks the readiness route, and fails when it gets no answer.
    unready = docker("exec", "-e", "PORT=1", name, "python", "/app/docker/healthcheck.py",
                     check=False)
    assert unready.returncode == 1 and "/api/health/ready" in unready.stderr
    ready = docker("exec", name, "python", "/app/docker/healthcheck.py", check=False)
    assert ready.returncode == 0, ready.stderr
    assert inspect(name)["HostConfig"]["ReadonlyRootfs"] is True
    status = docker("exec", name, "cat", "/proc/1/status").stdout
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [str(IMAGE_UID)] * 4
    assert "uvicorn" in docker("exec", name, "cat", "/proc/1/cmdline").stdout
    written = docker("exec", name, "sh", "-c", "echo x > /app/written", check=False)
    assert written.returncode != 0 and "Read-only file system" in written.stderr
    tools = "gcc cc c++ g++ clang make ld as cpp"
    found = docker("exec", name, "sh", "-c", f"for t in {tools}; do command -v $t; done",
                   check=False).stdout
    assert found.strip() == ""


def test_refuses_to_start_without_a_master_key(containers: Containers) -> None:
    volume = containers.volume("data")
    done = docker("run", "--rm", "-v", f"{volume}:/data", IMAGE, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "No master key at /run/secrets/deltadb_master_key" in done.stderr
    assert "deltadb keygen" in done.stderr


def test_refuses_a_store_that_is_not_on_a_volume(secret_files: dict[str, Path]) -> None:
    done = docker("run", "--rm", *secret_mounts(secret_files), IMAGE, check=False)
    assert done.returncode == 2
    assert "is not on a volume" in done.stderr and "Traceback" not in done.stderr


def test_generates_a_key_for_an_empty_store_only_when_asked(
    containers: Containers, secret_files: dict[str, Path]
) -> None:
    data, keys, port = containers.volume("data"), containers.volume("keys"), free_port()
    secret_key = {"openchat_secret_key": secret_files["openchat_secret_key"]}
    asked = ["-e", "OPENCHAT_GENERATE_KEY=1", "-e", "DELTADB_MASTER_KEY_FILE=/keys/master.key",
             "-v", f"{keys}:/keys"]
    name = containers.run("app", "-p", f"127.0.0.1:{port}:8000", "-v", f"{data}:/data",
                          *secret_mounts(secret_key), *HEALTH_FAST, *asked)
    wait_healthy(name)
    assert "Generated a new DeltaDB master key at /keys/master.key" in docker("logs", name).stderr
    mode = docker("exec", name, "stat", "-c", "%a %u", "/keys/master.key").stdout.split()
    assert mode == ["600", str(IMAGE_UID)]
    docker("rm", "--force", name)

    # The key volume lost (say, not backed up): a second start must not make a new key over
    # the store that exists, which would be unreadable under it.
    fresh_keys = containers.volume("fresh-keys")
    refused = docker("run", "--rm", "-v", f"{data}:/data", "-v", f"{fresh_keys}:/keys",
                     *secret_mounts(secret_key), *asked[:4], IMAGE, check=False)
    assert refused.returncode == 2
    assert "OPENCHAT_GENERATE_KEY=1 refused: /data/openchat already holds a store" in refused.stderr
    listing = docker("run", "--rm", "-v", f"{fresh_keys}:/keys", "--entrypoint", "ls", IMAGE,
                     "-A", "/keys").stdout
    assert listing.strip() == ""


def test_the_same_image_serves_the_entity_api(
    containers: Containers, secret_files: dict[str, Path]
) -> None:
    port, admin_key = free_port(), secrets.token_urlsafe(24)
    name = containers.run(
        "entity", "--read-only", "--tmpfs", "/tmp", "-p", f"127.0.0.1:{port}:8080",
        "-v", f"{containers.volume('data')}:/data", *secret_mounts(secret_files),
        "-e", f"DELTADB_ADMIN_KEY={admin_key}",
        "-e", "HEALTHCHECK_URL=http://127.0.0.1:8080/health", *HEALTH_FAST,
        command=("deltadb", "serve", "--store", "/data/openchat", "--host", "0.0.0.0",
                 "--port", "8080"))
    wait_healthy(name)
    base = f"http://127.0.0.1:{port}"
    token = httpx.post(f"{base}/api/login", json={"key": admin_key}, timeout=10).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    put = httpx.put(f"{base}/entity/notes", json={"n1": {"text": "hello"}}, headers=auth)
    assert put.status_code == 200, put.text
    got = httpx.get(f"{base}/entity/notes", params={"key": "n1"}, headers=auth)
    assert got.json() == {"text": "hello"}


def test_replicas_starting_together_share_one_store(
    containers: Containers, secret_files: dict[str, Path]
) -> None:
    volume, ports = containers.volume("data"), [free_port(), free_port()]
    names = [run_app(containers, volume, secret_files, port) for port in ports]
    for name in names:
        wait_healthy(name)
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    account = {"username": "dave", "email": "dave@example.org", "password": PASSWORD}
    assert httpx.post(f"{bases[0]}/api/auth/register", json=account, timeout=30).status_code == 201
    with sign_in(bases[0], "dave") as http:
        uuid = http.post("/api/conversations", json={"title": "shared"}).json()["uuid"]
    wait_answering(bases[1])
    with sign_in(bases[1], "dave") as http:
        assert http.get(f"/api/conversations/{uuid}").json()["title"] == "shared"
    logs = "".join(docker("logs", name).stderr + docker("logs", name).stdout for name in names)
    assert logs.count("Running upgrade  -> 0001") == 1, logs
