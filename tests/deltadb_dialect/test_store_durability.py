"""Crash safety (kill -9 mid-write), no lost updates across processes, disk full."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, exc, text

HERE = Path(__file__).parent


def _start_writer(store: Path, first: int) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, str(HERE / "crash_writer.py"), str(store),
                              str(first)], stdout=subprocess.PIPE, text=True, env=os.environ)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "READY"
    return child


def _acknowledged(child: subprocess.Popen[str]) -> list[int]:
    out, _ = child.communicate(timeout=30)
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("ACK ")]


def _check_consistent(store: Path, acknowledged: set[int]) -> int:
    engine = create_engine(f"deltadb:///{store}")
    try:
        with engine.connect() as conn:
            batches = dict(conn.execute(text("SELECT id, size FROM batches")).all())
            counts = dict(conn.execute(text(
                "SELECT batch, count(*) FROM items GROUP BY batch")).all())
    finally:
        engine.dispose()
    assert acknowledged <= set(batches), "an acknowledged commit was lost"
    assert counts == batches, "a transaction is partially visible"
    return max(batches, default=0)


@pytest.mark.slow
def test_kill_9_at_random_points_loses_no_acknowledged_commit(master_key, store_dir) -> None:
    rng = random.Random(20261122)
    acknowledged: set[int] = set()
    next_batch = 1
    for _trial in range(12):
        child = _start_writer(store_dir, next_batch)
        time.sleep(rng.uniform(0.02, 0.6))
        child.send_signal(signal.SIGKILL)
        acknowledged |= set(_acknowledged(child))
        next_batch = _check_consistent(store_dir, acknowledged) + 1
    assert len(acknowledged) > 20


@pytest.mark.slow
def test_processes_incrementing_one_counter_lose_no_update(master_key, store_dir) -> None:
    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    script = (
        "import sys\n"
        "from sqlalchemy import create_engine, text\n"
        f"engine = create_engine('deltadb:///{store_dir}')\n"
        "for _ in range(40):\n"
        "    with engine.begin() as conn:\n"
        "        value = conn.execute(text('SELECT value FROM counter WHERE id = 1')).scalar()\n"
        "        conn.execute(text('UPDATE counter SET value = :v WHERE id = 1'),\n"
        "                     {'v': value + 1})\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(4)]
    for _ in range(40):  # this process takes part too, through the same engine API
        with engine.begin() as conn:
            value = conn.execute(text("SELECT value FROM counter WHERE id = 1")).scalar()
            conn.execute(text("UPDATE counter SET value = :v WHERE id = 1"), {"v": value + 1})
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM counter")).scalar() == 200
    engine.dispose()


_ONE_WRITE = (
    "import sys\n"
    "from sqlalchemy import create_engine, text\n"
    "e = create_engine(sys.argv[1] + '?timeout=5')\n"
    "with e.begin() as c:\n"
    "    c.execute(text(\"INSERT INTO notes (body) VALUES ('from the child')\"))\n"
    "print('committed', flush=True)\n"
)


def test_an_idle_process_gives_up_the_lock_it_kept(master_key, store_dir) -> None:
    """A process keeps the store's lock after a transaction only while it stays busy."""
    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    with engine.connect() as conn:  # a read: this process may now keep the lock
        assert conn.execute(text("SELECT count(*) FROM notes")).scalar() == 0
    # This process does nothing more while the child waits (at most 5 s) for the lock.
    done = subprocess.run([sys.executable, "-c", _ONE_WRITE, f"deltadb:///{store_dir}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with engine.connect() as conn:  # the child's acknowledged commit is visible at once
        assert conn.execute(text("SELECT body FROM notes")).scalars().all() == [
            "from the child"]
    engine.dispose()


def test_a_busy_process_hands_the_lock_over_and_sees_the_commit(master_key, store_dir) -> None:
    """Back-to-back transactions keep the lock, yet a waiting process gets it promptly, and
    every transaction that starts after the other's commit returned sees that commit."""
    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    child = subprocess.Popen([sys.executable, "-c", _ONE_WRITE, f"deltadb:///{store_dir}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:
        returned = child.poll() is not None  # before the transaction starts
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM notes")).scalar()
        if returned:
            assert child.returncode == 0, child.communicate()[1]
            assert count == 1, "a commit acknowledged before this read began is missing"
            break
        assert time.monotonic() < deadline, "the busy process never handed the lock over"
    engine.dispose()


def test_would_wait_tells_whether_a_transaction_could_block(master_key, store_dir) -> None:
    """The hint the web service uses to decide whether short work may run on its event loop."""
    from deltadb_dialect.store import open_stores

    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        (store,) = [s for s in open_stores() if s.layout.root == Path(store_dir).resolve()]
        assert store.would_wait()  # this thread has it: anyone else would wait
    assert not store.would_wait()  # kept between this busy process's transactions
    done = subprocess.run([sys.executable, "-c", _ONE_WRITE, f"deltadb:///{store_dir}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert store.would_wait()  # handed to the child: the next transaction takes it back
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notes")).scalar() == 1
    assert not store.would_wait()
    engine.dispose()


def test_each_process_sees_the_others_commits(master_key, store_dir) -> None:
    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    subprocess.run([sys.executable, "-c", (
        "from sqlalchemy import create_engine, text\n"
        f"e = create_engine('deltadb:///{store_dir}')\n"
        "with e.begin() as c:\n"
        "    c.execute(text(\"CREATE TABLE more (id INTEGER PRIMARY KEY)\"))\n"
        "    c.execute(text(\"INSERT INTO notes (body) VALUES ('from the other process')\"))\n"
    )], check=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT body FROM notes")).scalars().all() == [
            "from the other process"]
        assert conn.execute(text("SELECT count(*) FROM more")).scalar() == 0
    engine.dispose()


def test_disk_full_at_commit_loses_nothing_committed(make_engine, monkeypatch) -> None:
    from deltadb_dialect import log

    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (1, 'committed')"))
    real_pwrite = os.pwrite

    def full_disk(fd: int, data: bytes, offset: int) -> int:
        real_pwrite(fd, data[: len(data) // 2], offset)  # a partial write, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(log.os, "pwrite", full_disk)
    with pytest.raises(exc.OperationalError, match="No space left.*nothing was committed"):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2, 'lost')"))
    with engine.connect() as conn:  # the failed transaction is not visible either
        assert conn.execute(text("SELECT v FROM t")).scalars().all() == ["committed"]
    monkeypatch.setattr(log.os, "pwrite", real_pwrite)
    with engine.begin() as conn:  # space is back: the store works again
        conn.execute(text("INSERT INTO t VALUES (3, 'later')"))
    engine.dispose()
    with make_engine().connect() as conn:
        assert conn.execute(text("SELECT v FROM t ORDER BY id")).scalars().all() == [
            "committed", "later"]


def test_unwritable_store_directory_is_a_clear_error(master_key, tmp_path, monkeypatch) -> None:
    store = tmp_path / "ro"
    store.mkdir()
    # Tests run as root in CI, where chmod does not stop writes; simulate the refusal.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False)
    with pytest.raises(exc.OperationalError, match="not writable"):
        create_engine(f"deltadb:///{store}").connect()


def test_torn_final_record_is_dropped_and_store_reopens(make_engine, store_dir) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    log_file = next(store_dir.glob("log-*.dlg"))
    size_before = log_file.stat().st_size
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    engine.dispose()
    last_record = log_file.read_bytes()[size_before:]
    with open(log_file, "ab") as handle:  # what a crash in the middle of write() leaves
        handle.write(last_record[: len(last_record) // 2])
    engine = make_engine()
    with engine.begin() as conn:
        assert conn.execute(text("SELECT id FROM t ORDER BY id")).scalars().all() == [1, 2]
        conn.execute(text("INSERT INTO t VALUES (3)"))
    engine.dispose()
    with make_engine().connect() as conn:
        assert conn.execute(text("SELECT id FROM t ORDER BY id")).scalars().all() == [1, 2, 3]


def test_damaged_header_or_missing_files_are_clear_errors(make_engine, store_dir) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    next(store_dir.glob("log-*.dlg")).unlink()
    with pytest.raises(exc.DatabaseError, match="log file .* is missing"):
        create_engine(f"deltadb:///{store_dir}").connect()
    (store_dir / "store.hdr").write_text("{not json")
    with pytest.raises(exc.DatabaseError, match="header .* is damaged"):
        create_engine(f"deltadb:///{store_dir}").connect()


@pytest.mark.parametrize("url, message", [
    ("deltadb://user@host/x", "Invalid DeltaDB URL"),
    ("deltadb://", "must name the store"),
    ("deltadb:///x?bogus=1", "Unknown DeltaDB URL option"),
    ("deltadb:///x?timeout=soon", "not a valid float"),
    ("deltadb:///x?create=maybe", "true or false"),
])
def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(exc.ArgumentError, match=message):
        create_engine(url).connect()


def test_create_false_refuses_a_missing_store(master_key, tmp_path) -> None:
    with pytest.raises(exc.DatabaseError, match="not a DeltaDB store"):
        create_engine(f"deltadb:///{tmp_path / 'absent'}?create=false").connect()


def test_files_left_by_an_interrupted_checkpoint_are_removed(make_engine, store_dir) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    (store_dir / "snap-0123456789abcdef.dpk").write_bytes(b"half a snapshot")
    (store_dir / ".store.hdr.1234.tmp").write_bytes(b"{")
    with make_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    assert sorted(p.name.split("-")[0] for p in store_dir.iterdir()) == [
        "log", "store.hdr", "store.lock", "store.seq"]
