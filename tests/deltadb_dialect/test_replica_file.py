"""The replica file on the host: replayed after a crash, rebuilt when unusable, shared by the
host's processes, bounded in memory, and never readable on disk."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import apsw
import pytest
from sqlalchemy import create_engine, exc, text

from deltadb_dialect import keys, replica_file
from deltadb_dialect.keys import MasterKeySource
from deltadb_dialect.store import Store

MARKER = "PlaintextMarker7f3a"
ROOT = Path(__file__).resolve().parents[2]


def _rows(store_dir: Path, url_options: str = "") -> list[tuple]:
    engine = create_engine(f"deltadb:///{store_dir}{url_options}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT id, body FROM notes ORDER BY id"))]
    finally:
        engine.dispose()


def _fill(store_dir: Path, count: int = 50) -> list[tuple]:
    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    for i in range(count):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": f"{MARKER} {i}"})
    engine.dispose()
    return [(i + 1, f"{MARKER} {i}") for i in range(count)]


def _replica_path(store_dir: Path) -> Path:
    return store_dir / (store_dir / "store.replica").read_text()


def _replica_key(store_dir: Path, master_key: str) -> bytes:
    store = Store.inspect(store_dir, MasterKeySource(raw_key=bytes.fromhex(master_key)))
    try:
        return keys.subkey(store.keyring.store_key, "replica-file")
    finally:
        store.close()


def _python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


# --- a crash between the log's sync and the replica's commit -----------------------------

_KILLED_AFTER_LOG_SYNC = """
    import os, signal, sys
    from sqlalchemy import create_engine, text
    import deltadb_dialect.store as store_module

    written = store_module.Store._write

    def write_then_die(self, builder):
        written(self, builder)  # the record is in the log and synced; the replica is not
        os.kill(os.getpid(), signal.SIGKILL)

    store_module.Store._write = write_then_die
    engine = create_engine("deltadb:///" + sys.argv[1])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes (body) VALUES ('committed in the log only')"))
"""


def test_a_commit_killed_before_the_replica_commit_is_replayed(master_key, store_dir) -> None:
    expected = _fill(store_dir, 5)
    done = _python(_KILLED_AFTER_LOG_SYNC, str(store_dir))
    assert done.returncode == -9, done.stderr
    conn = replica_file.open_connection(_replica_path(store_dir),
                                        _replica_key(store_dir, master_key), cache_mb=4)
    state = replica_file.read_state(conn)
    assert state is not None
    assert conn.execute("SELECT count(*) FROM notes").fetchall() == [(5,)]  # the replica lags
    conn.close()
    assert _rows(store_dir) == [*expected, (6, "committed in the log only")]
    # replayed into the shared file (with its position), not only into this process's view
    conn = replica_file.open_connection(_replica_path(store_dir),
                                        _replica_key(store_dir, master_key), cache_mb=4)
    after = replica_file.read_state(conn)
    assert after is not None and after.position.seq == state.position.seq + 1
    assert conn.execute("SELECT count(*) FROM notes").fetchall() == [(6,)]
    conn.close()


# --- an unusable replica: rebuilt, never served wrong ------------------------------------

def _rebuilt(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "rebuilding the replica" in r.getMessage()]


def test_a_deleted_replica_is_rebuilt(master_key, store_dir, caplog) -> None:
    expected = _fill(store_dir)
    old = _replica_path(store_dir)
    old.unlink()
    with caplog.at_level(logging.WARNING, logger="deltadb_dialect"):
        assert _rows(store_dir) == expected
    assert _rebuilt(caplog)
    assert _replica_path(store_dir) != old


def _read_twice(store_dir: Path) -> list[list[tuple] | None]:
    """Read the table in two transactions; a damaged page fails the first (never a wrong
    answer) and has the store rebuild its replica before the next."""
    engine = create_engine(f"deltadb:///{store_dir}")
    seen: list[list[tuple] | None] = []
    try:
        for _attempt in range(2):
            try:
                with engine.connect() as conn:
                    seen.append([tuple(r) for r in conn.execute(
                        text("SELECT id, body FROM notes ORDER BY id"))])
            except exc.DatabaseError as error:
                assert "malformed" in str(error) or "not a database" in str(error)
                seen.append(None)
    finally:
        engine.dispose()
    return seen


@pytest.mark.parametrize("size", [0, 4096, 10_000, 20_480])
def test_a_truncated_replica_is_rebuilt(master_key, store_dir, caplog, size) -> None:
    expected = _fill(store_dir, 400)
    path = _replica_path(store_dir)
    assert path.stat().st_size > size
    os.truncate(path, size)
    with caplog.at_level(logging.WARNING, logger="deltadb_dialect"):
        seen = _read_twice(store_dir)
    assert seen[-1] == expected and all(rows in (None, expected) for rows in seen)
    assert _rebuilt(caplog)


def test_a_flipped_byte_in_the_replica_fails_then_is_rebuilt(master_key, store_dir) -> None:
    expected = _fill(store_dir, 400)
    path = _replica_path(store_dir)
    size = path.stat().st_size
    assert size > 3 * 4096
    for offset in (size // 2, size - 100):  # pages of rows, not the header
        with open(path, "r+b") as handle:
            handle.seek(offset)
            byte = handle.read(1)
            handle.seek(offset)
            handle.write(bytes([byte[0] ^ 0x40]))
    seen = _read_twice(store_dir)
    assert seen[-1] == expected  # the failure (if the page was read) led to a rebuild
    assert all(rows in (None, expected) for rows in seen)  # never a wrong answer


def test_another_stores_replica_is_rebuilt(master_key, store_dir, tmp_path, caplog) -> None:
    expected = _fill(store_dir)
    other = tmp_path / "other"
    _fill(other, 3)
    os.replace(_replica_path(other), _replica_path(store_dir))  # same name, another store's file
    with caplog.at_level(logging.WARNING, logger="deltadb_dialect"):
        assert _rows(store_dir) == expected
    assert any("another store" in m for m in _rebuilt(caplog))


def test_a_replica_of_another_format_is_rebuilt(master_key, store_dir, caplog) -> None:
    expected = _fill(store_dir)
    conn = replica_file.open_connection(_replica_path(store_dir),
                                        _replica_key(store_dir, master_key), cache_mb=4)
    conn.execute(f"UPDATE {replica_file.STATE_TABLE} SET format = 0")
    conn.execute("DELETE FROM notes WHERE id > 10")  # what an older layout would not have
    conn.close()
    with caplog.at_level(logging.WARNING, logger="deltadb_dialect"):
        assert _rows(store_dir) == expected
    assert any("another version" in m for m in _rebuilt(caplog))


def test_a_replica_ahead_of_the_log_is_rebuilt(master_key, store_dir, tmp_path, caplog) -> None:
    """A store directory rolled back under its replica (the log and header restored from an
    earlier copy): the replica has seen a future that no longer exists."""
    _fill(store_dir, 10)
    saved = tmp_path / "saved"
    saved.mkdir()
    for path in store_dir.iterdir():
        if path.name.startswith(("log-", "store.hdr", "store.seq")):
            (saved / path.name).write_bytes(path.read_bytes())
    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes (body) VALUES ('a future')"))
    engine.dispose()
    for path in saved.iterdir():
        (store_dir / path.name).write_bytes(path.read_bytes())
    with caplog.at_level(logging.WARNING, logger="deltadb_dialect"):
        rows = _rows(store_dir)
    assert len(rows) == 10 and "a future" not in {body for _id, body in rows}
    assert any("ahead of the store's log" in m for m in _rebuilt(caplog))


# --- the host's processes share one replica ----------------------------------------------

_WRITER = """
    import sys, time
    from sqlalchemy import create_engine, text
    engine = create_engine("deltadb:///" + sys.argv[1])
    name, count = sys.argv[2], int(sys.argv[3])
    for i in range(count):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": f"{name} {i}"})
    with engine.connect() as conn:
        for row in conn.execute(text("SELECT id, body FROM notes ORDER BY id")):
            print(row[0], row[1])
"""


@pytest.mark.slow
def test_two_processes_and_a_third_started_mid_write_agree(master_key, store_dir) -> None:
    _fill(store_dir, 1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", textwrap.dedent(_WRITER), str(store_dir)]
    first = [subprocess.Popen([*command, name, "150"], stdout=subprocess.PIPE, text=True,
                              env=env) for name in ("a", "b")]
    time.sleep(1.0)
    third = subprocess.Popen([*command, "c", "50"], stdout=subprocess.PIPE, text=True, env=env)
    outputs = []
    for process in [*first, third]:
        out, _ = process.communicate(timeout=180)
        assert process.returncode == 0
        outputs.append(out)
    final = _rows(store_dir)
    assert len(final) == 1 + 150 + 150 + 50
    listed = "".join(f"{i} {body}\n" for i, body in final)
    assert outputs[-1] == listed or listed.startswith(outputs[-1])  # the last to finish: all
    for out in outputs:  # every process saw a prefix of the one history
        assert listed.startswith(out)
    assert len(list(store_dir.glob("replica-*.db"))) == 1  # one copy on the host


# --- memory: a cache the user sets, not the store's size ---------------------------------

_BUILD = """
    import sys
    from sqlalchemy import create_engine, text
    engine = create_engine("deltadb:///" + sys.argv[1])
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    body = "x" * 500
    for start in range(0, int(sys.argv[2]), 10_000):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes (body) VALUES (:b)"),
                         [{"b": f"{start + i} {body}"} for i in range(10_000)])
"""

_READ_THROUGH = """
    import sys
    from sqlalchemy import create_engine, text

    def rss_kb():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

    engine = create_engine("deltadb:///" + sys.argv[1] + "?replica_cache_mb=" + sys.argv[2])
    with engine.connect() as conn:  # imports and the engine's first statement, no rows yet
        conn.execute(text("SELECT 1")).all()
    before = rss_kb()
    seen, last = 0, 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, body FROM notes WHERE id > :last ORDER BY id "
                                     "LIMIT 2000"), {"last": last}).all()
        if not rows:
            break
        seen += len(rows)
        last = rows[-1][0]
    print(seen, rss_kb() - before)
"""


@pytest.mark.slow
def test_reading_a_300k_row_store_stays_within_the_cache(master_key, store_dir) -> None:
    built = _python(_BUILD, str(store_dir), "300000", timeout=600)
    assert built.returncode == 0, built.stderr
    read = _python(_READ_THROUGH, str(store_dir), "16", timeout=300)
    assert read.returncode == 0, read.stderr
    seen, growth_kb = map(int, read.stdout.split())
    assert seen == 300_000
    # the rows' plaintext is ~160 MB: a process holding it would grow by far more
    assert growth_kb < (16 + 24) * 1024, f"RSS grew by {growth_kb / 1024:.0f} MB"


# --- nothing readable in any file the store or SQLite writes -----------------------------

def test_no_plaintext_in_the_replica_its_wal_or_temporary_files(master_key, store_dir) -> None:
    _fill(store_dir, 200)
    engine = create_engine(f"deltadb:///{store_dir}")
    try:
        with engine.begin() as conn:  # a sort and a temporary table: SQLite's temp storage
            conn.execute(text("CREATE TEMP TABLE scratch AS SELECT body FROM notes"))
            conn.execute(text("SELECT body FROM scratch ORDER BY body DESC")).all()
            conn.execute(text("UPDATE notes SET body = body || ' again'"))
        names = {p.name for p in store_dir.iterdir()}
        assert any(n.endswith("-wal") for n in names) and any(n.endswith("-shm") for n in names)
        for path in store_dir.iterdir():  # while open: replica, -wal, -shm, log, header...
            assert MARKER.encode() not in path.read_bytes(), path.name
    finally:
        engine.dispose()
    for path in store_dir.iterdir():  # and after close
        assert MARKER.encode() not in path.read_bytes(), path.name


def test_the_replica_key_is_not_the_store_key(master_key, store_dir) -> None:
    _fill(store_dir, 1)
    with pytest.raises(apsw.NotADBError):
        conn = replica_file.open_connection(_replica_path(store_dir), bytes.fromhex(master_key),
                                            cache_mb=4)
        conn.execute("SELECT count(*) FROM notes").fetchall()


# --- checkpoints in the background ---------------------------------------------------------

def test_a_background_checkpoint_keeps_every_commit(master_key, store_dir) -> None:
    """Checkpoints are packed from the replica outside the lock while commits go on; the
    commits made meanwhile move to the new log, and a fresh process sees every row."""
    from deltadb_dialect import checkpoint

    engine = create_engine(f"deltadb:///{store_dir}?checkpoint_mb=0.05")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    before = checkpoint.METRICS["checkpoints"]
    expected = []
    for i in range(400):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": f"{MARKER} {i}" * 8})
        expected.append((i + 1, f"{MARKER} {i}" * 8))
    engine.dispose()  # waits for a checkpoint still running
    assert checkpoint.METRICS["checkpoints"] > before
    assert len(list(store_dir.glob("snap-*.dpk"))) == 1 and len(list(store_dir.glob("log-*"))) == 1
    code = ("import sys; from sqlalchemy import create_engine, text; "
            "e = create_engine('deltadb:///' + sys.argv[1]); c = e.connect(); "
            "print(c.execute(text('SELECT count(*), sum(length(body)) FROM notes')).one())")
    done = _python(code, str(store_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str((400, sum(len(b) for _i, b in expected)))
    _drop_replica_files(store_dir)  # rebuilt from the snapshot and the new log alone
    assert _rows(store_dir) == expected


def _drop_replica_files(store_dir: Path) -> None:
    (store_dir / "store.replica").unlink()
    for path in store_dir.glob("replica-*"):
        path.unlink()


def test_the_replica_files_are_the_owners_alone(master_key, store_dir) -> None:
    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
        conn.execute(text("INSERT INTO notes (body) VALUES ('x')"))
        files = sorted(store_dir.glob("replica-*"))
        assert {p.name.rsplit("-", 1)[-1] for p in files} >= {"wal", "shm"}
        for path in files:
            assert path.stat().st_mode & 0o777 == 0o600, path.name
    engine.dispose()
