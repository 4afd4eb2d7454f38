"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temporary directory.

    with PostgresCluster() as cluster:
        url = cluster.url  # postgresql+psycopg://openchat@127.0.0.1:PORT/openchat

It listens on a free loopback port only (and a socket in its own directory), trusts local
connections (nothing else can reach it), and is stopped and deleted afterwards. PostgreSQL
refuses to run as root, so under root the server runs as the `postgres` system user that
Debian's package creates. `make test` installs that package when it is missing.

Other suites reuse it through the session-scoped `postgres_cluster` fixture:
`pytest_plugins = ["pg_cluster"]` (with tests/ on sys.path) or import the fixture.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DATABASE = "openchat"
USER = "openchat"


def postgres_bin() -> Path:
    """The newest installed server's bin directory (Debian keeps it off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL is not installed: run `make test` or apt-get install postgresql")


def _version(path: str) -> int:
    return int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="openchat-pg-"))
        self.data = self.root / "data"
        self.run_as = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> "PostgresCluster":
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.root / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE)
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster
