"""The store on PostgreSQL: several hosts (replica directories) and processes on one store."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from tests.deltadb_dialect.pg.conftest import PasswordCluster

HERE = Path(__file__).parent


def _url(replica: Path, pg_url: str, options: str = "") -> str:
    return f"deltadb:///{replica}?storage={pg_url}" + (f"&{options}" if options else "")


def _run_python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=120, env=os.environ)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_new_host_builds_its_replica_from_postgresql_alone(master_key, tmp_path,
                                                             pg_url) -> None:
    engine = create_engine(_url(tmp_path / "a", pg_url, "checkpoint_mb=0.01"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE n (id INTEGER PRIMARY KEY, v TEXT)"))
    for i in range(200):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO n (v) VALUES (:v)"), {"v": f"value {i}" * 5})
    engine.dispose()
    with psycopg.connect(pg_url) as pg:
        snapshots = pg.execute("SELECT count(DISTINCT name) FROM deltadb_snapshots").fetchone()
        logs = pg.execute("SELECT count(*) FROM deltadb_logs").fetchone()
    assert snapshots == (1,) and logs == (1,)  # checkpointed; the old log and snapshot gone
    other = create_engine(_url(tmp_path / "b", pg_url))
    with other.connect() as conn:
        assert conn.execute(text("SELECT count(*), max(id) FROM n")).one() == (200, 200)
    other.dispose()


_WRITE_THEN_READ = """
    import sys
    from sqlalchemy import create_engine, text
    engine = create_engine(sys.argv[1])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (v) VALUES ('b')"))
    with engine.connect() as conn:
        print(conn.execute(text("SELECT group_concat(v, '') FROM (SELECT v FROM t ORDER BY id)"))
              .scalar())
"""


def test_a_commit_on_one_host_is_seen_by_the_next_transaction_on_another(
        master_key, tmp_path, pg_url) -> None:
    host_a = create_engine(_url(tmp_path / "a", pg_url))
    with host_a.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (1, 'a')"))
    for i in range(1, 5):
        # host B (another replica directory, another process) sees A's last commit ...
        assert _run_python(_WRITE_THEN_READ, _url(tmp_path / "b", pg_url)).strip() == "ab" * i
        # ... and A's next transaction (its engine kept open, its replica current until B
        # wrote) sees B's
        with host_a.begin() as conn:
            assert conn.execute(text("SELECT v FROM t ORDER BY id DESC LIMIT 1")).scalar() == "b"
            conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
    host_a.dispose()


_INCREMENT = """
    import sys
    from sqlalchemy import create_engine, exc, text
    engine = create_engine(sys.argv[1])
    done = 0
    while done < int(sys.argv[2]):
        try:
            with engine.begin() as conn:
                value = conn.execute(text("SELECT n FROM counter WHERE id = 1")).scalar()
                conn.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": value + 1})
        except exc.OperationalError as error:  # another host incremented since the read
            assert "could not serialize" in str(error), error
            continue
        done += 1
"""


@pytest.mark.slow
def test_writers_on_several_hosts_lose_no_update(master_key, tmp_path, pg_url) -> None:
    engine = create_engine(_url(tmp_path / "a", pg_url))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INT)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    engine.dispose()
    hosts = ["a", "a", "b", "c"]  # two processes share host a's replica
    workers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(_INCREMENT),
                                 _url(tmp_path / host, pg_url), "100"]) for host in hosts]
    assert [w.wait(timeout=300) for w in workers] == [0] * len(hosts)
    engine = create_engine(_url(tmp_path / "d", pg_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar() == 400
    engine.dispose()


def _writer(url: str, first: int, *, retry: bool = False) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, str(HERE / "pg_writer.py"), url, str(first)]
                             + (["retry"] if retry else []),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=os.environ)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "READY", child.stderr.read() if child.stderr else ""
    return child


def _lines(child: subprocess.Popen[str]) -> list[str]:
    out, _ = child.communicate(timeout=60)
    return out.split()


def _acked(lines: list[str]) -> list[int]:
    return [int(lines[i + 1]) for i, word in enumerate(lines) if word == "ACK"]


def _check_whole(url: str, acknowledged: list[int]) -> int:
    """Every acknowledged batch is there with all its rows, and no batch is partial."""
    engine = create_engine(url)
    with engine.connect() as conn:
        batches = dict(conn.execute(text("SELECT id, size FROM batches")).all())
        counts = dict(conn.execute(text("SELECT batch, count(*) FROM items GROUP BY batch")).all())
    engine.dispose()
    assert set(acknowledged) <= set(batches)
    assert all(counts.get(batch) == size for batch, size in batches.items())
    return max(batches, default=0)


@pytest.mark.slow
def test_kill_9_mid_commit_loses_nothing_acknowledged_and_others_go_on(
        master_key, tmp_path, pg_url) -> None:
    options = "checkpoint_mb=0.25"  # checkpoints (snapshot uploads) under the kills too
    steady = _writer(_url(tmp_path / "steady", pg_url, options), 1_000_000)
    victim_url = _url(tmp_path / "victim", pg_url, options)
    acknowledged: list[int] = []
    next_batch = 1
    for _ in range(6):
        child = _writer(victim_url, next_batch)
        time.sleep(random.uniform(0.3, 1.2))
        child.send_signal(signal.SIGKILL)
        acknowledged += _acked(_lines(child))
        next_batch = _check_whole(_url(tmp_path / "check", pg_url), acknowledged) + 1
        next_batch = max(next_batch, max(acknowledged, default=0) + 1)
        if next_batch >= 1_000_000:
            next_batch = max(acknowledged, default=0) + 1
    steady.send_signal(signal.SIGTERM)
    steady_acked = _acked(_lines(steady))
    assert len(steady_acked) > 20  # the other host went on committing throughout
    assert len(acknowledged) > 10
    _check_whole(_url(tmp_path / "victim", pg_url), acknowledged + steady_acked)


def _canaries() -> dict[str, str]:
    return {"table": "canarytablezq", "column": "canarycolumnzq", "text": "canary-text-qq7",
            "email": "canary.person@example.org"}


def test_plaintext_never_reaches_postgresql(master_key, tmp_path, pg_url,
                                            pg_cluster: PasswordCluster) -> None:
    canary = _canaries()
    engine = create_engine(_url(tmp_path / "a", pg_url, "checkpoint_mb=0.01"))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {canary['table']} (id INTEGER PRIMARY KEY, "
                          f"{canary['column']} TEXT, email TEXT)"))
    for i in range(60):  # enough for a checkpoint: the snapshot is scanned too
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {canary['table']} VALUES (:i, :t, :e)"),
                         {"i": i, "t": f"{canary['text']} {i}", "e": canary["email"]})
    engine.dispose()
    database = pg_url.rsplit("/", 1)[1]
    with pg_cluster.admin(database) as admin:
        admin.execute("CHECKPOINT")  # everything into the data files
    dump = pg_cluster.run_tool("pg_dump", "-h", str(pg_cluster.root), "-p", str(pg_cluster.port),
                               "-U", "openchat", database).stdout
    assert "deltadb_records" in dump and len(dump) > 10_000
    files = [p for p in pg_cluster.data.rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "a").rglob("*") if p.is_file()]
    for needle in canary.values():
        assert needle not in dump
        for path in files:
            assert needle.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_threads_reading_in_batches_and_another_host_lose_no_update(master_key, tmp_path,
                                                                    pg_url) -> None:
    """Threads of one process: runs of reads share one head check (a batch), writes between
    them; another host increments meanwhile. Every increment counts, every read is current."""
    import threading

    engine = create_engine(_url(tmp_path / "a", pg_url), pool_size=8)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INT)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    other = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_INCREMENT),
                              _url(tmp_path / "b", pg_url), "60"])
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(15):
                for _ in range(3):
                    with engine.connect() as conn:
                        conn.execute(text("SELECT n FROM counter")).scalar()
                while True:
                    try:
                        with engine.begin() as conn:
                            value = conn.execute(
                                text("SELECT n FROM counter WHERE id = 1")).scalar()
                            conn.execute(text("UPDATE counter SET n = :n WHERE id = 1"),
                                         {"n": value + 1})
                        break
                    except OperationalError as error:  # the other host came first
                        assert "could not serialize" in str(error), error
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert other.wait(timeout=300) == 0
    assert not failures, failures[0]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar() == 6 * 15 + 60
    engine.dispose()


_OPEN_AND_COUNT = """
    import sys
    from sqlalchemy import create_engine, text
    engine = create_engine(sys.argv[1])
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS hosts (name TEXT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO hosts VALUES (:name)"), {"name": sys.argv[2]})
"""


def test_hosts_starting_together_on_an_empty_database_make_one_store(
        master_key, tmp_path, pg_url) -> None:
    # App servers started at once (compose --scale, a deployment's rollout) all find no store
    # and create it: every one must open the same store, none may fail on the tables.
    hosts = [f"host{i}" for i in range(6)]
    started = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(_OPEN_AND_COUNT),
                          _url(tmp_path / name, pg_url), name],
                         stderr=subprocess.PIPE, text=True, env=os.environ)
        for name in hosts
    ]
    errors = [process.communicate(timeout=120)[1] for process in started]
    assert [process.returncode for process in started] == [0] * len(hosts), errors
    engine = create_engine(_url(tmp_path / "reader", pg_url))
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT name FROM hosts")).scalars()) == hosts
    engine.dispose()


def _two_hosts_sharing_table_t(tmp_path, pg_url, *, rows: int) -> tuple[Engine, Engine]:
    """Engines of hosts A and B on one store; A has made table t with ``rows`` rows (v = 0)."""
    host_a = create_engine(_url(tmp_path / "a", pg_url))
    host_b = create_engine(_url(tmp_path / "b", pg_url))
    with host_a.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INT)"))
        conn.execute(text("INSERT INTO t VALUES (:id, 0)"),
                     [{"id": i} for i in range(1, rows + 1)])
    return host_a, host_b


def test_reads_take_no_lock_and_a_write_checks_what_it_read(master_key, tmp_path,
                                                            pg_url) -> None:
    host_a, host_b = _two_hosts_sharing_table_t(tmp_path, pg_url, rows=2)
    with host_b.connect() as conn:  # opened (opening holds the store)
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2
    with host_a.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (3, 0)"))
    with psycopg.connect(pg_url) as writer:  # a writer of another host holds the head row
        writer.execute("SELECT 1 FROM deltadb_head WHERE id = 1 FOR UPDATE")
        started = time.monotonic()
        with host_b.connect() as conn:  # reads (and catches up) without waiting for it
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 3
        assert time.monotonic() - started < 5
        writer.rollback()
    read = text("SELECT v FROM t WHERE id = 1")
    with host_b.begin() as conn:  # A changes a row B did not read: B's write goes through
        assert conn.execute(read).scalar() == 0
        with host_a.begin() as other:
            other.execute(text("UPDATE t SET v = 5 WHERE id = 2"))
        conn.execute(text("UPDATE t SET v = 1 WHERE id = 1"))
    with host_b.connect() as conn:  # A changes the row B read: B's write fails, unwritten
        with conn.begin():
            value = conn.execute(read).scalar()
            with host_a.begin() as other:
                other.execute(text("UPDATE t SET v = 7 WHERE id = 1"))
            with pytest.raises(OperationalError, match="could not serialize") as lost:
                conn.execute(text("UPDATE t SET v = :v WHERE id = 1"), {"v": value + 1})
            assert lost.value.orig.sqlstate == "40001"  # as PostgreSQL says it: run it again
    host_a.dispose()
    host_b.dispose()
    check = create_engine(_url(tmp_path / "c", pg_url))
    with check.connect() as conn:
        rows = conn.execute(text("SELECT id, v FROM t ORDER BY id")).all()
    assert rows == [(1, 7), (2, 5), (3, 0)]
    check.dispose()


def test_a_read_through_another_connection_of_the_thread_is_checked_too(master_key, tmp_path,
                                                                        pg_url) -> None:
    # Code that reads through a second connection while the first one's transaction is open
    # (a helper with its own session) reads into that transaction: its rows count as read.
    host_a, host_b = _two_hosts_sharing_table_t(tmp_path, pg_url, rows=1)
    read = text("SELECT v FROM t WHERE id = 1")
    with host_b.connect() as conn, host_b.connect() as side:
        with conn.begin():
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
            value = side.execute(read).scalar()
            side.rollback()
            with host_a.begin() as other:
                other.execute(text("UPDATE t SET v = 7 WHERE id = 1"))
            with pytest.raises(OperationalError, match="could not serialize"):
                conn.execute(text("UPDATE t SET v = :v WHERE id = 1"), {"v": value + 1})
    with host_b.connect() as conn:
        assert conn.execute(read).scalar() == 7
    host_a.dispose()
    host_b.dispose()


def test_a_read_that_catches_up_with_another_host_costs_one_query(master_key, tmp_path,
                                                                    pg_url,
                                                                    monkeypatch) -> None:
    from deltadb_dialect import pg_storage

    host_a = create_engine(_url(tmp_path / "a", pg_url))
    host_b = create_engine(_url(tmp_path / "b", pg_url))
    with host_a.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    with host_b.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    queries: list[str] = []
    for name in ("_run", "_head_rows", "_head_query"):
        original = getattr(pg_storage.PgStorage, name)

        def counted(self, *args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            queries.append(str(args[0])[:40])
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pg_storage.PgStorage, name, counted)
    for i in range(3):
        with host_a.begin() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"row {i}"})
        queries.clear()
        with host_b.connect() as conn:  # the head and the new records, in one statement
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == i + 1
        assert len(queries) == 1, queries
    queries.clear()
    with host_b.connect() as conn:  # nothing new: the head check alone
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 3
    assert len(queries) == 1, queries
    host_a.dispose()
    host_b.dispose()


def test_a_sql_ascii_database_holds_a_store(master_key, tmp_path,
                                            pg_cluster: PasswordCluster) -> None:
    # initdb without a locale (a minimal container image) makes SQL_ASCII databases, whose
    # text columns psycopg returns as bytes unless the connection asks for UTF-8.
    url = pg_cluster.dsn(pg_cluster.new_database(encoding="SQL_ASCII"))
    engine = create_engine(_url(tmp_path / "a", url))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1, 'é')"))
    engine.dispose()
    other = create_engine(_url(tmp_path / "b", url))
    with other.connect() as conn:
        assert conn.execute(text("SELECT v FROM t")).scalar() == "é"
    other.dispose()


def test_background_checkpoints_leave_the_other_hosts_and_this_ones_reads_alone(
        master_key, tmp_path, pg_url) -> None:
    """Host A checkpoints again and again while its own threads read and write and host B
    writes: no write waits long for A's checkpoints, nothing is lost, a new host sees all."""
    import threading

    a = create_engine(_url(tmp_path / "a", pg_url, "checkpoint_mb=0.01"))
    b = create_engine(_url(tmp_path / "b", pg_url))
    with a.begin() as conn:
        conn.execute(text("CREATE TABLE w (id INTEGER PRIMARY KEY, host TEXT, v TEXT)"))
    stop = threading.Event()
    failures: list[BaseException] = []
    slowest = {"b": 0.0}

    def read_on_a() -> None:
        try:
            while not stop.is_set():
                with a.connect() as conn:
                    conn.execute(text("SELECT count(*) FROM w")).one()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    def write_on_b() -> None:
        try:
            for i in range(150):
                started = time.monotonic()
                with b.begin() as conn:
                    conn.execute(text("INSERT INTO w (host, v) VALUES ('b', :v)"), {"v": str(i)})
                slowest["b"] = max(slowest["b"], time.monotonic() - started)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=read_on_a), threading.Thread(target=write_on_b)]
    for thread in threads:
        thread.start()
    for i in range(300):
        with a.begin() as conn:
            conn.execute(text("INSERT INTO w (host, v) VALUES ('a', :v)"), {"v": f"{i}" * 40})
    threads[1].join(120)
    stop.set()
    threads[0].join(30)
    assert failures == []
    assert slowest["b"] < 5.0, slowest  # never held up by a checkpoint left holding the head
    a.dispose()
    b.dispose()
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT count(DISTINCT name) FROM deltadb_snapshots").fetchone() == (1,)
    c = create_engine(_url(tmp_path / "c", pg_url))
    with c.connect() as conn:
        rows = conn.execute(text("SELECT host, count(*) FROM w GROUP BY host ORDER BY host")).all()
    c.dispose()
    assert rows == [("a", 300), ("b", 150)]
