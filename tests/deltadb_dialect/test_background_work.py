"""Work the store does beside its commits: the replica's WAL copied back by a thread, and
checkpoints packed by a child process; a kill -9 during either loses nothing and leaves
nothing behind; a new process does not import Alembic to open a store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from deltadb_dialect import checkpoint, pack_worker, wal_checkpoint

ROOT = Path(__file__).resolve().parents[2]
BODY = "a row of the background tests " * 8


def _python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _create(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS notes "
                          "(id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))


def _insert(engine, first: int, count: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes (id, body) VALUES (:i, :b)"),
                     [{"i": i, "b": f"{i} {BODY}"} for i in range(first, first + count)])


def _ids(store_dir: Path) -> list[int]:
    done = _python("""
        import sys
        from sqlalchemy import create_engine, text
        engine = create_engine("deltadb:///" + sys.argv[1])
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, body FROM notes ORDER BY id")).all()
        assert all(body == f"{i} " + sys.argv[2] for i, body in rows), "a row changed"
        print(" ".join(str(i) for i, _ in rows))
    """, str(store_dir), BODY)
    assert done.returncode == 0, done.stderr
    return [int(i) for i in done.stdout.split()]


# --- the replica's WAL ------------------------------------------------------------------------

def test_the_wal_is_checkpointed_by_a_thread_not_the_commit(master_key, store_dir,
                                                            monkeypatch) -> None:
    """By default, past PAGES the WAL is copied back by the background thread (the commit
    only notes its size), so the WAL file restarts instead of growing with every commit."""
    monkeypatch.setattr(wal_checkpoint, "PAGES", 64)
    monkeypatch.setattr(wal_checkpoint, "LIMIT", 10**9)  # never inline
    before = dict(wal_checkpoint.METRICS)
    engine = create_engine(f"deltadb:///{store_dir}")
    _create(engine)
    for first in range(1, 6001, 300):
        _insert(engine, first, 300)
        time.sleep(0.02)  # the thread copies between commits, as between a build's batches
    wal = next(store_dir.glob("replica-*-wal"))
    assert wal_checkpoint.METRICS["wal_checkpoints"] > before["wal_checkpoints"]
    assert wal_checkpoint.METRICS["wal_checkpoints_inline"] == before["wal_checkpoints_inline"]
    # 6,000 rows of ~250 bytes are ~400 pages per 1,000 rows; a WAL that restarted holds a
    # few commits' pages, not the whole build's
    assert wal.stat().st_size < 2_000 * 4096
    engine.dispose()
    assert _ids(store_dir) == list(range(1, 6001))


def test_without_the_thread_sqlite_checkpoints_the_wal_itself(master_key, store_dir,
                                                             monkeypatch) -> None:
    """``?wal_thread=false``: no thread and no hook; SQLite's own checkpoint (inside the
    commit that passes 1,000 pages) keeps the WAL small."""
    monkeypatch.setattr(wal_checkpoint, "PAGES", 64)
    before = dict(wal_checkpoint.METRICS)
    # (stores other tests left open in this process may run threads of their own)
    threads_before = {t.ident for t in threading.enumerate() if t.name == "deltadb-wal-checkpoint"}
    engine = create_engine(f"deltadb:///{store_dir}?wal_thread=false")
    _create(engine)
    for first in range(1, 6001, 300):
        _insert(engine, first, 300)
    assert dict(wal_checkpoint.METRICS) == before  # neither the thread nor the hook ran
    assert not any(t.name == "deltadb-wal-checkpoint" and t.ident not in threads_before
                   for t in threading.enumerate())
    wal = next(store_dir.glob("replica-*-wal"))
    assert wal.stat().st_size < 2_000 * 4096
    engine.dispose()
    assert _ids(store_dir) == list(range(1, 6001))


def test_a_wal_the_thread_cannot_keep_up_with_is_checkpointed_inline(master_key, store_dir,
                                                                     monkeypatch) -> None:
    monkeypatch.setattr(wal_checkpoint, "PAGES", 10**9)  # the thread never starts
    monkeypatch.setattr(wal_checkpoint, "LIMIT", 64)
    before = wal_checkpoint.METRICS["wal_checkpoints_inline"]
    engine = create_engine(f"deltadb:///{store_dir}?wal_thread=true")
    _create(engine)
    for first in range(1, 3001, 300):
        _insert(engine, first, 300)
    assert wal_checkpoint.METRICS["wal_checkpoints_inline"] > before
    engine.dispose()
    assert _ids(store_dir) == list(range(1, 3001))


_WAL_WRITER = """
    import sys
    from sqlalchemy import create_engine, text
    from deltadb_dialect import wal_checkpoint
    wal_checkpoint.PAGES = 16  # a checkpoint after nearly every commit
    engine = create_engine("deltadb:///" + sys.argv[1] + "?wal_thread=true")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS notes "
                          "(id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    first = int(sys.argv[2])
    print("READY", flush=True)
    while True:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes (id, body) VALUES (:i, :b)"),
                         [{"i": i, "b": f"{i} " + sys.argv[3]} for i in range(first, first + 50)])
        print("ACK", first + 49, flush=True)
        first += 50
"""


@pytest.mark.slow
def test_kill_9_during_wal_checkpoints_loses_no_acknowledged_row(master_key, store_dir) -> None:
    acknowledged, first = 0, 1
    for pause in (0.3, 0.7, 1.1, 0.5):
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_WAL_WRITER),
                                  str(store_dir), str(first), BODY], stdout=subprocess.PIPE,
                                 text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        time.sleep(pause)
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        # (a line the kill cut short acknowledges nothing)
        acks = [int(found[1]) for line in out.splitlines()
                if (found := re.fullmatch(r"ACK (\d+)", line))]
        acknowledged = max([acknowledged, *acks])
        ids = _ids(store_dir)
        assert ids == list(range(1, len(ids) + 1)), "a transaction is partly there"
        assert len(ids) >= acknowledged, "an acknowledged commit was lost"
        first = len(ids) + 1
    assert acknowledged > 200


# --- checkpoints packed by a child process -------------------------------------------------------

def test_a_background_checkpoint_packs_in_a_child_process(master_key, store_dir) -> None:
    packed = pack_worker.METRICS["packed_in_child"]
    checkpoints = checkpoint.METRICS["checkpoints"]
    engine = create_engine(f"deltadb:///{store_dir}?checkpoint_mb=0.2")
    _create(engine)
    for first in range(1, 4001, 200):
        _insert(engine, first, 200)
    engine.dispose()  # waits for the checkpoint still running
    assert pack_worker.METRICS["packed_in_child"] > packed
    assert checkpoint.METRICS["checkpoints"] > checkpoints
    assert len(list(store_dir.glob("snap-*"))) == 1 and len(list(store_dir.glob("log-*"))) == 1
    (store_dir / "store.replica").unlink()
    for path in store_dir.glob("replica-*"):
        path.unlink()
    assert _ids(store_dir) == list(range(1, 4001))  # rebuilt from the child's snapshot


def test_a_failed_packing_process_is_reported_and_commits_go_on(master_key, store_dir,
                                                                monkeypatch, caplog) -> None:
    engine = create_engine(f"deltadb:///{store_dir}?checkpoint_mb=0.1")
    _create(engine)
    with monkeypatch.context() as patch, caplog.at_level("WARNING", logger="deltadb_dialect"):
        patch.setattr(sys, "executable", "/bin/false")  # the child cannot run
        for first in range(1, 2001, 200):
            _insert(engine, first, 200)
        engine.dispose()
    failures = [r for r in caplog.records if "background checkpoint" in r.getMessage()]
    # retried once the log has grown by another checkpoint's worth, not at every commit
    assert 1 <= len(failures) <= 5, len(failures)
    assert not list(store_dir.glob("snap-*")) and len(list(store_dir.glob("log-*"))) == 1
    assert _ids(store_dir) == list(range(1, 2001))


def _children_packing(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("PPid:"))
        if ppid == parent and b"deltadb_dialect.pack_worker" in cmdline:
            found.append(int(entry.name))
    return found


_PACK_WRITER = """
    import sys
    from sqlalchemy import create_engine, text
    engine = create_engine("deltadb:///" + sys.argv[1] + "?checkpoint_mb=1")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS notes "
                          "(id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    first = 1
    print("READY", flush=True)
    while True:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes (id, body) VALUES (:i, :b)"),
                         [{"i": i, "b": f"{i} " + sys.argv[2]} for i in range(first, first + 500)])
        print("ACK", first + 499, flush=True)
        first += 500
"""


@pytest.mark.slow
def test_kill_9_while_a_child_packs_loses_nothing_and_leaves_nothing(master_key,
                                                                     store_dir) -> None:
    """The child dies with its parent; the store reopens with every acknowledged row and
    without the unfinished snapshot; the store key was in neither the child's command line
    nor its environment."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_PACK_WRITER),
                              str(store_dir), BODY], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "READY"
    deadline = time.monotonic() + 90
    packers: list[int] = []
    while not packers and time.monotonic() < deadline:
        packers = _children_packing(child.pid)
        time.sleep(0.01)
    assert packers, "no checkpoint was packed in a child process"
    packer = packers[0]
    exposed = (Path(f"/proc/{packer}/cmdline").read_bytes()
               + Path(f"/proc/{packer}/environ").read_bytes())
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=30)
    gone = time.monotonic() + 10
    while Path(f"/proc/{packer}").exists() and time.monotonic() < gone:
        time.sleep(0.05)
    status = Path(f"/proc/{packer}/status")
    assert not status.exists() or "zombie" in status.read_text(), "the packer outlived its parent"
    acks = [int(line.split()[1]) for line in out.splitlines() if line.startswith("ACK")]
    ids = _ids(store_dir)
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= max(acks)
    snapshots = {p.name for p in store_dir.glob("snap-*")}
    assert len(snapshots) <= 1 and not list(store_dir.glob(".*.tmp"))
    from deltadb_dialect.keys import MasterKeySource
    from deltadb_dialect.store import Store

    store = Store.inspect(store_dir, MasterKeySource(raw_key=bytes.fromhex(master_key)))
    try:
        store_key = store.keyring.store_key
        named = store.header.snapshot["file"] if store.header.snapshot else None
    finally:
        store.close()
    assert snapshots <= {named}
    assert store_key.hex().encode() not in exposed and store_key not in exposed


# --- opening ------------------------------------------------------------------------------------

def test_opening_a_store_does_not_import_alembic_and_alembic_still_finds_it(master_key,
                                                                            store_dir) -> None:
    done = _python("""
        import sys
        from sqlalchemy import create_engine, text
        engine = create_engine("deltadb:///" + sys.argv[1])
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).all()
        print("alembic" in sys.modules)
        from alembic.ddl.impl import DefaultImpl
        print(DefaultImpl.get_by_dialect(engine.dialect).__name__)
    """, str(store_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "DeltaImpl"]


# --- other code reading the replica's files ---------------------------------------------------

_SCAN_THEN_SHARE = """
    import os, subprocess, sys
    from pathlib import Path
    from sqlalchemy import create_engine, text
    from deltadb_dialect import wal_checkpoint
    from tests.file_scan import files_containing
    # no checkpoint at all: the WAL outgrows the first 32 KiB region of its index (-shm)
    wal_checkpoint.PAGES = wal_checkpoint.LIMIT = 10**9
    store, how, body = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    engine = create_engine(f"deltadb:///{store}?wal_thread=true")
    def insert(first, count):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes (id, body) VALUES (:i, :b)"),
                         [{"i": i, "b": f"{i} {body}"} for i in range(first, first + count)])
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    insert(1, 10)
    if how == "here":  # what the backend suite's plaintext check did
        for path in store.iterdir():
            path.read_bytes()
    else:
        assert files_containing(store, b"no such bytes") == []
    # SQLite's read lock on the WAL index's "in use" byte (128) says to every other process
    # that this one has the -shm mapped: without it, the next to open the store resets it.
    shm = next(store.glob("replica-*.db-shm"))
    mine = [line.split() for line in open("/proc/locks")
            if line.split()[4] == str(os.getpid())
            and line.split()[5].endswith(":" + str(shm.stat().st_ino))]
    print("in use" if any(fields[6] == "128" for fields in mine) else "released")
    other = subprocess.run([sys.executable, "-c", sys.argv[4], str(store), body], timeout=120)
    assert other.returncode == 0
    for first in range(100, 30_100, 1_000):  # about 6,000 WAL pages
        insert(first, 1_000)
    print("done")
"""

_ONE_ROW = """
import sys
from sqlalchemy import create_engine, text
engine = create_engine("deltadb:///" + sys.argv[1])
with engine.begin() as conn:
    conn.execute(text("INSERT INTO notes (id, body) VALUES (11, :b)"), {"b": "11 " + sys.argv[2]})
engine.dispose()
"""


def test_reading_the_store_files_from_a_child_keeps_the_replica_shared_safely(
        master_key, store_dir) -> None:
    """Scanning an open store's files for plaintext leaves this process's SQLite locks in
    place; another process then opens it, the WAL grows past 4,096 pages, and every row is
    there. (Read by the process itself, the files' descriptors dropped its lock on the -shm:
    in the backend suite another process then reset the WAL index under its mapping, and a
    later commit, past the index's first 32 KiB, died of a SIGBUS.)"""
    big = BODY * 8
    done = _python(_SCAN_THEN_SHARE, str(store_dir), "child", big, _ONE_ROW, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split() == ["in", "use", "done"]
    ids = _ids_with_body(store_dir, big)
    assert ids == [*range(1, 12), *range(100, 30_100)]


def _ids_with_body(store_dir: Path, body: str) -> list[int]:
    done = _python("""
        import sys
        from sqlalchemy import create_engine, text
        engine = create_engine("deltadb:///" + sys.argv[1])
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, body FROM notes ORDER BY id")).all()
        assert all(b == f"{i} " + sys.argv[2] for i, b in rows), "a row changed"
        print(" ".join(str(i) for i, _ in rows))
    """, str(store_dir), body)
    assert done.returncode == 0, done.stderr
    return [int(i) for i in done.stdout.split()]
