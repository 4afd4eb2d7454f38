"""A throwaway PostgreSQL cluster with password authentication, and stores on it.

One cluster for the session (``initdb`` + ``pg_ctl``, loopback, free port; see
tests/pg_cluster.py). Host connections need a password (so a wrong one can be refused);
each test gets a database of its own.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine

from tests.pg_cluster import USER, PostgresCluster

PASSWORD = "store-test-password"  # the throwaway cluster's, on loopback only


class PasswordCluster(PostgresCluster):
    """The test cluster, asking host connections for scram-sha-256 passwords."""

    def start(self) -> PasswordCluster:
        super().start()
        with self.admin() as conn:
            conn.execute(f"ALTER ROLE {USER} PASSWORD '{PASSWORD}'")
        hba = self.data / "pg_hba.conf"
        hba.write_text("local all all trust\n"
                       "local replication all trust\n"
                       "host all all 127.0.0.1/32 scram-sha-256\n"
                       "host all all 0.0.0.0/0 scram-sha-256\n")
        self._run("pg_ctl", "-D", str(self.data), "reload")
        return self

    def admin(self, database: str = "postgres") -> psycopg.Connection:
        """A superuser connection through the cluster's socket (trusted)."""
        return psycopg.connect(host=str(self.root), port=self.port, user=USER, dbname=database,
                               autocommit=True)

    def dsn(self, database: str, *, user: str = USER, password: str = PASSWORD,
            host: str = "127.0.0.1") -> str:
        return f"postgresql://{user}:{password}@{host}:{self.port}/{database}"

    def new_database(self, *, encoding: str | None = None) -> str:
        name = "store_" + secrets.token_hex(4)
        options = f" ENCODING '{encoding}' TEMPLATE template0" if encoding else ""
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name}{options}")
        return name

    def pg_ctl(self, *argv: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), *argv)

    def _options(self) -> str:
        return f"-p {self.port} -k {self.root} -c listen_addresses='*' -c fsync=off"

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l",
                  str(self.root / "server.log"), "-w", "-m", "fast", "restart")

    def restart_stopped(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l",
                  str(self.root / "server.log"), "-w", "start")

    def run_tool(self, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120,
                              cwd=self.root, check=True, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PasswordCluster]:
    cluster = PasswordCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PasswordCluster) -> str:
    """A new empty database's URL (the store's role owns it)."""
    return pg_cluster.dsn(pg_cluster.new_database())


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = secrets.token_hex(32)
    monkeypatch.setenv("DELTADB_MASTER_KEY", key)
    return key


def with_storage(url: str, pg_url: str) -> str:
    return url + ("&" if "?" in url else "?") + f"storage={pg_url}"


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """This "host's" replica directory."""
    return tmp_path / "replica"


@pytest.fixture
def make_engine(master_key: str, store_dir: Path, pg_url: str,
                ) -> Iterator[Callable[..., Engine]]:
    """Engines on the test's PostgreSQL-backed store (the directory store's URLs, with the
    storage option added); all disposed at the end."""
    engines: list[Engine] = []

    def factory(url: str | None = None, **kwargs: object) -> Engine:
        engine = create_engine(with_storage(url or f"deltadb:///{store_dir}", pg_url),
                               **kwargs)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.dispose()
