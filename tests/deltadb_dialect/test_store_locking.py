"""When a transaction takes the store's writer lock: ``locking=first_statement`` (the default
for a directory) or ``locking=first_write`` (reads take a snapshot without the lock)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import Engine

# A process that changes row 2 in a transaction and keeps it open until told to commit.
_HOLDER = (
    "import sys\n"
    "from deltadb_dialect import dbapi\n"
    "c = dbapi.connect(sys.argv[1])\n"
    "c.execute(sys.argv[2])\n"
    "print('holding', flush=True)\n"
    "sys.stdin.readline()\n"
    "c.commit()\n"
    "print('committed', flush=True)\n"
    "sys.stdin.readline()\n"
)


class Holder:
    """Another process in the middle of a write transaction (it holds the writer lock)."""

    def __init__(self, store: Path, statement: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(store), statement], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=os.environ)
        assert self._line() == "holding"

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def commit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self._line() == "committed"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def engine(master_key: str, store_dir: Path) -> Iterator[Engine]:
    engine = create_engine(f"deltadb:///{store_dir}?locking=first_write&timeout=20")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0), (2, 0)"))
    yield engine
    engine.dispose()


def _values(conn: object) -> list[int]:
    return list(conn.execute(text("SELECT value FROM counter ORDER BY id")).scalars())  # type: ignore[attr-defined]


def test_a_reader_does_not_wait_for_another_process_writing(engine: Engine,
                                                            store_dir: Path) -> None:
    holder = Holder(store_dir, "UPDATE counter SET value = 5 WHERE id = 2")
    try:
        # timeout=0.5: a reader that waited for the holder would fail with "locked"
        reader = create_engine(f"deltadb:///{store_dir}?locking=first_write&timeout=0.5")
        with reader.connect() as conn:
            assert _values(conn) == [0, 0]  # the last committed state, not the holder's
        holder.commit()
        with reader.connect() as conn:
            assert _values(conn) == [0, 5]  # a commit acknowledged before it began
        reader.dispose()
    finally:
        holder.close()


def test_a_reader_that_takes_the_lock_at_its_first_statement_waits(engine: Engine,
                                                                  store_dir: Path) -> None:
    holder = Holder(store_dir, "UPDATE counter SET value = 5 WHERE id = 2")
    try:
        waiting = create_engine(f"deltadb:///{store_dir}?timeout=0.5")
        with pytest.raises(exc.OperationalError, match="locked"), waiting.connect() as conn:
            _values(conn)
        waiting.dispose()
    finally:
        holder.close()


def test_a_write_after_a_read_another_process_changed_fails_and_writes_nothing(
        engine: Engine, store_dir: Path) -> None:
    holder = Holder(store_dir, "UPDATE counter SET value = 5 WHERE id = 1")
    try:
        with engine.connect() as conn:
            value = conn.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one()
            holder.commit()  # changes the row just read
            with pytest.raises(exc.OperationalError) as failure:
                conn.execute(text("UPDATE counter SET value = :v WHERE id = 1"),
                             {"v": value + 1})
            assert failure.value.orig.sqlstate == "40001"  # type: ignore[union-attr]
            assert "try again" in str(failure.value)
            conn.rollback()
            assert _values(conn) == [5, 0]  # the holder's commit, and nothing of ours
    finally:
        holder.close()


def test_a_write_after_reads_nobody_changed_goes_through(engine: Engine,
                                                         store_dir: Path) -> None:
    holder = Holder(store_dir, "UPDATE counter SET value = 7 WHERE id = 2")
    try:
        with engine.connect() as conn:
            value = conn.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one()
            holder.commit()  # another row
            conn.execute(text("UPDATE counter SET value = :v WHERE id = 1"), {"v": value + 1})
            conn.commit()
            assert _values(conn) == [1, 7]
    finally:
        holder.close()


def test_a_reader_sees_a_table_another_process_created(engine: Engine,
                                                       store_dir: Path) -> None:
    with engine.connect() as conn:
        assert _values(conn) == [0, 0]  # this process's view is current
    other = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom deltadb_dialect import dbapi\nc = dbapi.connect(sys.argv[1])\n"
         "c.execute('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)')\n"
         "c.execute(\"INSERT INTO notes (body) VALUES ('from the other process')\")\n"
         "c.commit()\n", str(store_dir)], env=os.environ, capture_output=True, text=True,
        timeout=60)
    assert other.returncode == 0, other.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT body FROM notes")).scalars().all() == [
            "from the other process"]
        conn.execute(text("INSERT INTO notes (body) VALUES ('from here')"))
        conn.commit()
        assert conn.execute(text("SELECT count(*) FROM notes")).scalar() == 2


_INCREMENTS = (
    "import sys, time\n"
    "from sqlalchemy import create_engine, exc, text\n"
    "engine = create_engine(sys.argv[1])\n"
    "def increment():\n"
    "    while True:\n"
    "        try:\n"
    "            with engine.begin() as conn:\n"
    "                value = conn.execute(text('SELECT value FROM counter WHERE id = 1'))"
    ".scalar()\n"
    "                conn.execute(text('UPDATE counter SET value = :v WHERE id = 1'),\n"
    "                             {'v': value + 1})\n"
    "            return\n"
    "        except exc.OperationalError as error:\n"
    "            if getattr(error.orig, 'sqlstate', None) != '40001':\n"
    "                raise\n"
    "for _ in range(int(sys.argv[2])):\n"
    "    increment()\n"
)


@pytest.mark.slow
def test_processes_that_retry_on_serialization_failures_lose_no_update(
        engine: Engine, store_dir: Path) -> None:
    url = f"deltadb:///{store_dir}?locking=first_write"
    workers = [subprocess.Popen([sys.executable, "-c", _INCREMENTS, url, "150"],
                                env=os.environ) for _ in range(4)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0, 0]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM counter WHERE id = 1")).scalar() == 600


def test_an_unknown_locking_mode_is_refused_in_one_sentence(master_key: str,
                                                            store_dir: Path) -> None:
    with pytest.raises(exc.ArgumentError, match="first_statement or first_write"):
        create_engine(f"deltadb:///{store_dir}?locking=sometimes").connect()


def test_a_transaction_that_must_not_wait_reads_and_fails_at_once_where_it_would_wait(
        engine: Engine, store_dir: Path) -> None:
    holder = Holder(store_dir, "UPDATE counter SET value = 5 WHERE id = 2")
    try:
        raw = engine.raw_connection()
        group = raw.driver_connection.group_commit()  # type: ignore[union-attr]
        raw.close()
        with group.not_waiting(), engine.connect() as conn:
            assert _values(conn) == [0, 0]
            with pytest.raises(exc.OperationalError) as failure:
                conn.execute(text("UPDATE counter SET value = 1 WHERE id = 1"))
            assert failure.value.orig.sqlstate == "55P03"  # type: ignore[union-attr]
            conn.rollback()
        holder.commit()  # the holder, asked for the store and now idle, gives it up
        deadline = time.monotonic() + 10
        while True:
            try:
                with group.not_waiting(), engine.begin() as conn:
                    conn.execute(text("UPDATE counter SET value = 1 WHERE id = 1"))
                break
            except exc.OperationalError as error:
                assert error.orig.sqlstate == "55P03"  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the idle holder never gave the store up"
                time.sleep(0.05)
        with engine.connect() as conn:
            assert _values(conn) == [1, 5]
    finally:
        holder.close()
