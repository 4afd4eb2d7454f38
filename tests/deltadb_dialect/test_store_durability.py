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


def _start_writer(store: Path, first: int, mode: str = "synced") -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, str(HERE / "crash_writer.py"), str(store),
                              str(first), mode], stdout=subprocess.PIPE, text=True, env=os.environ)
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
@pytest.mark.parametrize("mode", ["synced", "deferred"])
def test_kill_9_at_random_points_loses_no_acknowledged_commit(
    master_key, store_dir, mode: str
) -> None:
    """`deferred`: commits written in deferring_sync() blocks, acknowledged after make_durable."""
    rng = random.Random(20261122)
    acknowledged: set[int] = set()
    next_batch = 1
    for _trial in range(12):
        child = _start_writer(store_dir, next_batch, mode)
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
    from deltadb_dialect.registry import open_stores

    engine = create_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        (store,) = [s for s in open_stores() if s.location == Path(store_dir).resolve()]
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
    with pytest.raises(exc.OperationalError, match=r"No space left.*nothing was committed"):
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
    end_before = _records_end(log_file)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    engine.dispose()
    end = _records_end(log_file)
    data = log_file.read_bytes()
    last_record = data[end_before:end]
    # What a crash in the middle of a write that extends the file leaves (no zeros after).
    log_file.write_bytes(data[:end] + last_record[: len(last_record) // 2])
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
    with pytest.raises(exc.DatabaseError, match=r"log file .* is missing"):
        create_engine(f"deltadb:///{store_dir}").connect()
    (store_dir / "store.hdr").write_text("{not json")
    with pytest.raises(exc.DatabaseError, match=r"header .* is damaged"):
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
    (store_dir / "replica-0123456789abcdef.db").write_bytes(b"half a rebuilt replica")
    with make_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    assert sorted({p.name.split("-")[0] for p in store_dir.iterdir()}) == [
        "log", "replica", "store.hdr", "store.lock", "store.replica", "store.seq"]
    replicas = [p.name for p in store_dir.glob("replica-*.db")]
    assert replicas == [(store_dir / "store.replica").read_text()]


# --- the preallocated log: its end, and torn writes inside the zero-filled space ----------

def _records_end(log_file: Path) -> int:
    """Where the log's records end (zero-filled preallocated space follows)."""
    from deltadb_dialect.log import CRC, FILE_HEADER, RECORD_HEADER

    data = log_file.read_bytes()
    start = FILE_HEADER.size + CRC.size
    while start + RECORD_HEADER.size + CRC.size <= len(data):
        if not any(data[start:start + RECORD_HEADER.size + CRC.size]):
            break
        start += RECORD_HEADER.size + CRC.size + RECORD_HEADER.unpack_from(data, start)[-1]
    return start


def _store_with_first_row(make_engine, store_dir: Path):
    """An engine on a store whose table ``t`` holds the acknowledged row (1, 'first'), and
    the store's log file."""
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (1, 'first')"))
    return engine, next(store_dir.glob("log-*.dlg"))


def _ids(engine) -> list[int]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM t ORDER BY id")).scalars().all()


def test_commits_overwrite_preallocated_zeros(make_engine, store_dir) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    log_file = next(store_dir.glob("log-*.dlg"))
    size = log_file.stat().st_size
    end = _records_end(log_file)
    assert size > end and not any(log_file.read_bytes()[end:])  # zeros ahead of the records
    for i in range(20):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:i, 'x')"), {"i": i})
    assert log_file.stat().st_size == size  # written in place: the file did not grow
    assert _records_end(log_file) > end
    engine.dispose()
    assert _ids(make_engine()) == list(range(20))


# What a crash during the write of the second commit can leave inside the zeroed space:
# a prefix of the record (a killed process), or, after a power loss, any of its blocks.
TORN_SHAPES = {
    "half the record": lambda rec: rec[: len(rec) // 2],
    "part of the header": lambda rec: rec[:11],
    "all but the tag": lambda rec: rec[:-16],
    "first block lost": lambda rec: bytes(40) + rec[40:],
    "header only": lambda rec: rec[:24],
}


@pytest.mark.parametrize("shape", sorted(TORN_SHAPES))
def test_torn_write_inside_preallocated_space_is_dropped(make_engine, store_dir,
                                                         shape) -> None:
    engine, log_file = _store_with_first_row(make_engine, store_dir)
    anchor = store_dir / "store.seq"
    acknowledged = anchor.read_bytes()
    end = _records_end(log_file)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2, :v)"), {"v": "second " * 50})
    engine.dispose()
    data = bytearray(log_file.read_bytes())
    record = bytes(data[end:_records_end(log_file)])
    torn = TORN_SHAPES[shape](record)
    data[end:end + len(record)] = torn + bytes(len(record) - len(torn))
    log_file.write_bytes(bytes(data))
    anchor.write_bytes(acknowledged)  # the crash came before the commit was acknowledged

    engine = make_engine()
    assert _ids(engine) == [1]  # the torn commit is not there, and nothing else is lost
    assert _records_end(log_file) == end and not any(log_file.read_bytes()[end:])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (3, 'third')"))
    engine.dispose()
    assert _ids(make_engine()) == [1, 3]


def test_junk_past_the_acknowledged_end_is_cut_off_at_open(make_engine, store_dir) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    log_file = next(store_dir.glob("log-*.dlg"))
    end = _records_end(log_file)
    data = bytearray(log_file.read_bytes())
    assert len(data) > end + 5000
    data[end + 4096:end + 4200] = os.urandom(104)  # a stray block of a torn write
    log_file.write_bytes(bytes(data))
    engine = make_engine()
    assert _ids(engine) == [1]
    assert not any(log_file.read_bytes()[end:])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    engine.dispose()
    assert _ids(make_engine()) == [1, 2]


def test_a_damaged_acknowledged_record_is_not_taken_for_a_torn_one(make_engine,
                                                                   store_dir) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    engine.dispose()
    log_file = next(store_dir.glob("log-*.dlg"))
    end = _records_end(log_file)
    data = bytearray(log_file.read_bytes())
    data[end - 30:end] = bytes(30)  # the last record's end zeroed, as if never written
    log_file.write_bytes(bytes(data))
    with pytest.raises(exc.DatabaseError, match="authenticate"):
        make_engine().connect()


TORN_WRITER = """
import os, signal, sys
from sqlalchemy import create_engine, text
from deltadb_dialect import log

real_pwrite = os.pwrite

def torn_pwrite(fd, data, offset):
    real_pwrite(fd, bytes(data[: len(data) // 3]), offset)
    os.kill(os.getpid(), signal.SIGKILL)

engine = create_engine("deltadb:///" + sys.argv[1])
log.os.pwrite = torn_pwrite
with engine.begin() as conn:
    conn.execute(text("INSERT INTO t VALUES (99, 'never acknowledged')"))
"""


def test_a_running_process_cuts_off_another_process_torn_write(make_engine,
                                                               store_dir) -> None:
    engine, log_file = _store_with_first_row(make_engine, store_dir)
    end = _records_end(log_file)
    child = subprocess.run([sys.executable, "-c", TORN_WRITER, str(store_dir)],
                           env=os.environ, timeout=60, check=False)
    assert child.returncode == -signal.SIGKILL
    assert any(log_file.read_bytes()[end:end + 24])  # the torn record's start is there
    assert _ids(engine) == [1]  # this process catches up past it...
    assert not any(log_file.read_bytes()[end:])  # ...and, holding the lock, cuts it off
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2, 'second')"))
    assert _ids(engine) == [1, 2]
    engine.dispose()
    assert _ids(make_engine()) == [1, 2]
