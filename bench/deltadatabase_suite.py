"""Run DeltaDatabase's own Python test suite against ``python -m deltadb_dialect serve``.

The suite is the ``tests/`` folder of the public DeltaDatabase repository. This script fetches
nothing: put a checkout (or an export of it) beside the project, by default
``../_deltadatabase`` (``--suite DIR`` or ``DELTADB_SUITE_DIR`` to choose another), and it
skips with a message when the suite is not there.

It starts the server as an external deployment with both REST and gRPC addresses, the way the
suite's ``DELTADB_EXTERNAL_*`` variables describe one:

1. a fresh store, and ``serve`` with a random admin key, to create the API key that gRPC
   workers act as (read and write; DeltaDatabase's processing workers have no more);
2. ``serve`` again with ``--grpc-addr``, ``--worker-grpc-addr`` and the worker ids the suite
   subscribes with, and then ``pytest`` on the suite.

    .venv/bin/python bench/deltadatabase_suite.py [--suite DIR] [-- PYTEST ARGS]

It prints pytest's summary and exits with pytest's status. The tests that read entity files
by name from a shared directory cannot pass by design; ``docs/SERVER.md`` lists them.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SUITE = ROOT.parent / "_deltadatabase"
# The worker ids DeltaDatabase's tests subscribe with (its main worker registers any id).
SUITE_WORKERS = ("worker-1", "token-provider-fixture", "worker-rot-1", "worker-wrap", "proc-1",
                 "pyworker-1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("server exited:\n" + log.read_text(errors="replace"))
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start within 60 s")


def serve(store: str, env: dict[str, str], log: Path,
          *extra: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "deltadb_dialect", "serve", "--store", store, "--port",
             str(port), "--log-level", "warning", *extra],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_for(url, process, log)
    return url, process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def create_worker_key(url: str, admin_key: str) -> str:
    request = urllib.request.Request(
        url + "/api/keys", method="POST",
        data=json.dumps({"name": "deltadatabase-workers", "permissions": ["read", "write"]}
                        ).encode(),
        headers={"Authorization": "Bearer " + admin_key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        key: str = json.loads(response.read())["key"]
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=os.environ.get("DELTADB_SUITE_DIR", DEFAULT_SUITE),
                        help=f"DeltaDatabase checkout holding tests/ (default {DEFAULT_SUITE})")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    tests = Path(args.suite) / "tests"
    if not (tests / "conftest.py").is_file():
        print(f"skipped: DeltaDatabase's test suite is not at {tests} (put the tests/ folder "
              "of its repository there, or pass --suite DIR); nothing is fetched.")
        return 0

    admin_key = "suite-admin-" + secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="deltadatabase-suite-") as work:
        workdir = Path(work)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DELTADB_ADMIN_KEY": admin_key,
               "DELTADB_MASTER_KEY": os.environ.get("DELTADB_MASTER_KEY") or secrets.token_hex(32)}
        store, log = str(workdir / "store"), workdir / "server.log"
        url, first = serve(store, env, log)
        try:
            worker_key = create_worker_key(url, admin_key)
        finally:
            stop(first)
        grpc_addr, worker_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        url, server = serve(store, {**env, "DELTADB_GRPC_WORKER_KEY": worker_key}, log,
                            "--grpc-addr", grpc_addr, "--worker-grpc-addr", worker_addr,
                            "--grpc-worker", ",".join(SUITE_WORKERS))
        try:
            suite_env = {**os.environ, "DELTADB_EXTERNAL_URL": url,
                         "DELTADB_EXTERNAL_GRPC_ADDR": grpc_addr,
                         "DELTADB_EXTERNAL_PROC_GRPC_ADDR": worker_addr,
                         "DELTADB_EXTERNAL_ADMIN_KEY": admin_key,
                         "DELTADB_EXTERNAL_SHARED_FS": str(workdir / "shared")}
            command = [sys.executable, "-m", "pytest", str(tests), "-q", "-p", "no:cacheprovider",
                       "--benchmark-disable", "-o", "addopts=", "--rootdir", str(tests),
                       *args.pytest_args]
            print(f"server {url} (gRPC {grpc_addr}, worker port {worker_addr})", flush=True)
            return subprocess.run(command, cwd=tests, env=suite_env).returncode
        finally:
            stop(server)


if __name__ == "__main__":
    raise SystemExit(main())
