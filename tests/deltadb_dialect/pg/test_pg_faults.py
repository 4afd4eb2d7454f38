"""Faults a PostgreSQL-backed store survives: bad settings at startup, PostgreSQL restarted
under a write load, and PostgreSQL restored from a base backup behind the hosts' replicas."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import create_engine, exc, text

from tests.deltadb_dialect.pg.conftest import PASSWORD, PasswordCluster
from tests.deltadb_dialect.pg.test_pg_store import _acked, _check_whole, _lines, _url, _writer
from tests.pg_cluster import _free_port

T = TypeVar("T")


def _open_error(url: str) -> str:
    engine = create_engine(url)
    try:
        with pytest.raises(exc.DBAPIError) as raised:
            engine.connect()
    finally:
        engine.dispose()
    message = str(raised.value.orig)
    assert "\n" not in message and "Traceback" not in message
    return message


def _cli_error(location: str) -> str:
    done = subprocess.run([sys.executable, "-m", "deltadb_dialect", "info", location],
                          capture_output=True, text=True, timeout=60, env=os.environ)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line
    return done.stderr


def test_an_unreachable_server_is_one_sentence(master_key, tmp_path) -> None:
    pg = f"postgresql://openchat:pw@127.0.0.1:{_free_port()}/openchat"
    message = _open_error(_url(tmp_path / "a", pg))
    assert message.startswith("cannot reach PostgreSQL at openchat@127.0.0.1:")
    assert "check that the server runs" in message and "pw" not in message
    assert "cannot reach PostgreSQL" in _cli_error(f"{tmp_path / 'a'}?storage={pg}")


def test_a_wrong_password_is_one_sentence(master_key, tmp_path, pg_url) -> None:
    wrong = pg_url.replace(PASSWORD, "not-the-password")
    message = _open_error(_url(tmp_path / "a", wrong))
    assert message.startswith("PostgreSQL at openchat@127.0.0.1:")
    assert "refused the password" in message
    assert "not-the-password" not in message


def test_a_database_without_the_stores_tables_is_one_sentence(master_key, tmp_path,
                                                              pg_url) -> None:
    message = _open_error(_url(tmp_path / "a", pg_url, "create=false"))
    assert "holds no DeltaDB store" in message and "migrate-storage" in message
    assert "holds no DeltaDB store" in _cli_error(f"{tmp_path / 'a'}?storage={pg_url}")


def test_a_role_without_rights_is_one_sentence(master_key, tmp_path, pg_url,
                                               pg_cluster: PasswordCluster) -> None:
    database = pg_url.rsplit("/", 1)[1]
    with pg_cluster.admin(database) as admin:
        admin.execute("DROP ROLE IF EXISTS visitor")
        admin.execute(f"CREATE ROLE visitor LOGIN PASSWORD '{PASSWORD}'")
    visitor = pg_cluster.dsn(database, user="visitor")
    # an empty database: the role may not create the store's tables
    assert "may not create the store's tables" in _open_error(_url(tmp_path / "a", visitor))
    # a store made by its owner: the role may not read it
    owner = create_engine(_url(tmp_path / "b", pg_url))
    with owner.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    owner.dispose()
    assert "has no rights on the store's tables" in _open_error(_url(tmp_path / "c", visitor))


@pytest.mark.slow
def test_postgresql_restarted_under_writes_reconnects_and_loses_nothing(
        master_key, tmp_path, pg_url, pg_cluster: PasswordCluster) -> None:
    writer = _writer(_url(tmp_path / "a", pg_url), 1, retry=True)
    time.sleep(1.0)
    pg_cluster.restart()
    time.sleep(2.0)
    writer.send_signal(signal.SIGTERM)
    lines = _lines(writer)
    errors = [i for i, word in enumerate(lines) if word == "ERR"]
    assert errors, "the restart was never felt"
    assert all(lines[i + 2] == "OperationalError" for i in errors)  # a clean 503 in the app
    acknowledged = _acked(lines)
    assert any(i > errors[-1] for i in range(len(lines)) if lines[i] == "ACK")  # it came back
    _check_whole(_url(tmp_path / "b", pg_url), acknowledged)


_KILL_OWN_BACKEND = "SELECT pg_terminate_backend(pg_backend_pid()) WHERE {} IS NOT NULL"


@pytest.mark.parametrize("lost", ["reply", "commit"])
def test_a_commit_whose_connection_drops_is_known_made_or_not(
        master_key, tmp_path, pg_url, monkeypatch, lost: str) -> None:
    from deltadb_dialect import pg_storage

    engine = create_engine(_url(tmp_path / "a", pg_url))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    # The connection dies in the commit's round trip: after its COMMIT (the reply is lost),
    # or before it (the commit is lost). Asking afterwards uses the real statements again.
    if lost == "reply":
        name, killer = "FLUSH_SQL", _KILL_OWN_BACKEND.format("%s::int")
    else:
        name, killer = "MOVE_HEAD", _KILL_OWN_BACKEND.format("%s || %s::text || %s::text")
    real = getattr(pg_storage, name)
    asked: list[bool] = []
    made = pg_storage.PgStorage._made

    def made_again(self: pg_storage.PgStorage, *args: object) -> bool:
        monkeypatch.setattr(pg_storage, name, real)
        asked.append(made(self, *args))  # type: ignore[arg-type]
        return asked[-1]

    monkeypatch.setattr(pg_storage.PgStorage, "_made", made_again)
    monkeypatch.setattr(pg_storage, name, killer)
    if lost == "reply":  # made: acknowledged as if the reply had come, never to be retried
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1, 'once')"))
        assert asked == [True]
    else:  # not made: a clean error, safe to retry
        with pytest.raises(exc.OperationalError, match="not acknowledged"):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (1, 'once')"))
        assert asked == [False]
        with engine.begin() as conn:  # the retry
            conn.execute(text("INSERT INTO t VALUES (1, 'once')"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2, 'next')"))
    engine.dispose()
    other = create_engine(_url(tmp_path / "b", pg_url))
    with other.connect() as conn:
        assert conn.execute(text("SELECT id, v FROM t ORDER BY id")).all() == [
            (1, "once"), (2, "next")]
    other.dispose()


def _eventually(attempt: Callable[[], T], seconds: float = 20.0) -> T:
    """The first result of ``attempt`` that does not fail with a connection error."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return attempt()
        except exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _restore(cluster: PasswordCluster, backup: Path) -> None:
    cluster.pg_ctl("-m", "fast", "-w", "stop")
    shutil.rmtree(cluster.data)
    shutil.copytree(backup, cluster.data, symlinks=True)
    if cluster.run_as:
        subprocess.run(["chown", "-R", f"{cluster.run_as}:", str(cluster.data)], check=True)
    cluster.data.chmod(0o700)
    cluster.restart_stopped()


def _values(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT v FROM t ORDER BY id")).scalars())
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_restore_to_an_earlier_point_is_noticed_by_every_host_ahead_of_it(
        master_key, tmp_path, pg_url, pg_cluster: PasswordCluster) -> None:
    host_a = create_engine(_url(tmp_path / "a", pg_url))
    with host_a.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        for i in range(5):
            conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"kept {i}"})
    backup = pg_cluster.root / f"base-{time.monotonic_ns()}"
    pg_cluster.run_tool("pg_basebackup", "-h", str(pg_cluster.root), "-p", str(pg_cluster.port),
                        "-U", "openchat", "-D", str(backup), "-X", "stream", "-c", "fast")
    for i in range(3):  # the future that the restore takes away
        with host_a.begin() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"lost {i}"})
    assert len(_values(_url(tmp_path / "b", pg_url))) == 8  # host b's replica has it too
    _restore(pg_cluster, backup)
    # Host a, running all along: its next transaction notices its replica is ahead.
    kept = [f"kept {i}" for i in range(5)]
    with host_a.connect() as conn:
        assert _eventually(lambda: list(conn.execute(text("SELECT v FROM t ORDER BY id"))
                                        .scalars())) == kept
    # A new history, longer than the lost one: the same sequence numbers, other records.
    for i in range(5):
        with host_a.begin() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"new {i}"})
    host_a.dispose()
    # Host b, reopened: its replica's last commit number exists again, with another record.
    assert _values(_url(tmp_path / "b", pg_url)) == kept + [f"new {i}" for i in range(5)]
