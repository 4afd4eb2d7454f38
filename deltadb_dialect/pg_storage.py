"""A store kept in PostgreSQL, with each host's encrypted replica in a local directory.

PostgreSQL holds the durable state (tables in ``pg_schema.py``, the log's rows in
``pg_log.py``, the writer lock in ``pg_lock.py``): ciphertext and MACs only. Each
app server process opens the store through a local directory (the path of the
``deltadb:`` URL) where its host keeps the encrypted replica file and the lock file that
serializes the host's own processes.

Transactions: a store transaction that begins with a read checks the head row (one query
that locks nothing): where the log ends. A process whose view is behind replays the records
past it before the transaction runs (in a read-only snapshot, so that no checkpoint of another
host discards them meanwhile), so every transaction sees every commit acknowledged before it
began, on any host (read-after-write across a load balancer). A transaction that writes holds
the head row (``SELECT ... FOR UPDATE``) from its first write, or from its start when that is
a write; a write that finds the head moved since the transaction's check catches up and has
the connection check its reads again (see ``pg_lock.py``), so read-modify-write transactions
cannot lose updates. A commit inserts its sealed records, moves the head and the anchor, and
commits, in one round trip (a pipeline); it is acknowledged only after PostgreSQL has
committed it.

A host's replica ahead of PostgreSQL (the database restored from a backup to an
earlier point) is noticed at that same head check: the host remembers the sequence
number and digest of the last record it applied or wrote (``pg-seen`` beside the
replica); a head behind that number, or another record at that number, means the
history the replica holds no longer exists, and the replica is rebuilt from PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import psycopg

from deltadb_dialect import pg_schema
from deltadb_dialect.errors import CorruptStoreError, StoreError, TamperError
from deltadb_dialect.keys import Keyring
from deltadb_dialect.layout import ANCHOR_NAME, HEADER_NAME, LOCK_NAME, Header, new_file_name
from deltadb_dialect.lock import StoreLock
from deltadb_dialect.log import CRC, FILE_HEADER, FILE_MAGIC, RECORD_HEADER, Entry
from deltadb_dialect.pg_lock import PgLock
from deltadb_dialect.pg_log import FETCH_ROWS, PgLog, split_records, whole_records_end
from deltadb_dialect.snapshot import Snapshot, write_snapshot

SNAPSHOT_PART = 8 * 1024 * 1024  # bytes per row of a snapshot
IMPORT_PART = 8 * 1024 * 1024  # bytes of a log file read at a time when a store moves in
SEEN_NAME = "pg-seen"
SEEN = struct.Struct(">Q32s")  # the last record this host applied or wrote: seq, digest
LEFTOVER_AGE = "1 hour"  # an unnamed snapshot this old is no checkpoint still uploading

HEAD_CHECK = ("SELECT h.log, h.log_end, h.seq, (SELECT r.digest FROM deltadb_records r "
              "WHERE r.seq = %s ORDER BY r.off DESC LIMIT 1) "
              "FROM deltadb_head h WHERE h.id = 1")
HEAD_SQL = HEAD_CHECK + " FOR UPDATE OF h"
# A read's snapshot while it catches up: the records it fetches cannot be discarded under it
# by another host's checkpoint.
SNAPSHOT_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
# The head check of a process whose view is at (log, end): the head and, read in the same
# statement (one snapshot), the records past that view, the first FETCH_ROWS of them.
HEAD_AND_NEWS = ("WITH h AS (SELECT log, log_end, seq FROM deltadb_head WHERE id = 1) "
                 "SELECT h.log, h.log_end, h.seq, (SELECT r.digest FROM deltadb_records r "
                 "WHERE r.seq = {seen} ORDER BY r.off DESC LIMIT 1), n.off, n.seq, n.digest, "
                 "n.data FROM h LEFT JOIN LATERAL (SELECT r.off, r.seq, r.digest, r.data "
                 "FROM deltadb_records r WHERE r.log = h.log AND h.log = '{log}' "
                 "AND r.off >= {end} AND r.off < h.log_end ORDER BY r.off LIMIT {rows}) n "
                 "ON true ORDER BY n.off")
SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
INSERT_RECORD = ("INSERT INTO deltadb_records (log, off, seq, digest, data) "
                 "VALUES (%s, %s, %s, %s, %s)")
MOVE_HEAD = "UPDATE deltadb_head SET log = %s, log_end = %s, seq = %s WHERE id = 1"
# One of FLUSH_SLOTS rows (a slot per process, chosen at random): a tiny synchronous write
# whose commit waits for the WAL flush that makes the commit before it durable.
FLUSH_SQL = "UPDATE deltadb_flush SET n = n + 1 WHERE slot = %s"
PUT_META = ("INSERT INTO deltadb_meta (name, data) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data")

METRICS: dict[str, int] = {"pg_transactions": 0, "pg_commits": 0, "pg_reconnects": 0,
                           "pg_rebuilds_for_lost_history": 0,
                           "pg_commits_found_after_reconnect": 0}
OUTCOME_SECONDS = 10.0  # how long a commit whose reply was lost waits to learn its outcome


class Head(NamedTuple):
    log: str
    end: int
    seq: int


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class PgStorage:
    """The store's durable state in PostgreSQL; ``location`` is this host's replica directory."""

    # Every write goes through the process's one connection, in the transaction holding the
    # head row: a checkpoint fills its new log under the store's lock.
    writes_beside_transactions = False

    def __init__(self, root: str | os.PathLike[str], url: str, *, timeout: float,
                 create: bool = True) -> None:
        self.location = Path(root)
        self.url = url
        self.where = pg_schema.describe(url)
        self._timeout = timeout
        self._create = create
        self._conn: psycopg.Connection[Any] | None = None
        self._abandoned: list[Any] = []  # a parent's connections, inherited by a fork
        self._lock: PgLock | None = None
        self._conn_lock = threading.RLock()  # the connection is shared by this process
        self._in_txn = False
        self._locked = False  # the open transaction holds the head row (a writer's)
        self._dirty = False  # the open transaction changed something not yet committed
        self._expect_moves = False  # the last head check found other hosts' commits
        # records the head check fetched with the head: (log, offset, rows)
        self._news: tuple[str, int, list[tuple[int, int, bytes, bytes]]] | None = None
        self._head: Head | None = None  # as locked by the open (or last) transaction
        self._seen_head: Head | None = None  # the head this process's view is at
        self._seen_fd = -1
        self._flush_slot = secrets.randbelow(pg_schema.FLUSH_SLOTS)
        self.divergence: str | None = None  # why the host's replica must be rebuilt

    # --- the connection -----------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                METRICS["pg_reconnects"] += 1
                self._drop_connection()
            self._conn = conn = pg_schema.connect(self.url, timeout=self._timeout)
        return conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._in_txn = self._dirty = self._locked = False
        self._seen_head = None  # another host may commit before we are back
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def _run(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """One statement (in the open transaction, if any); failures as store errors."""
        with self._conn_lock:
            try:
                cur = self._connection().execute(sql, params)
                return cur.fetchall() if cur.description is not None else []
            except psycopg.Error as exc:
                raise self._failed(exc) from None

    def _failed(self, exc: Exception) -> StoreError:
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or (
                self._conn is not None and self._conn.broken):
            self._drop_connection()
        elif self._in_txn:
            self._abort_quietly()
        return pg_schema.statement_error(self.url, exc)

    def _abort_quietly(self) -> None:
        self._in_txn = self._dirty = self._locked = False
        self._seen_head = None
        try:
            if self._conn is not None and not self._conn.broken:
                self._conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop_connection()

    # --- transactions -------------------------------------------------------------------

    def begin(self, *, lock: bool = True) -> bool:
        """Read the head; True when it moved since this process's view was last current.

        ``lock``: in a PostgreSQL transaction holding the head row (a writer's, one round
        trip); a read snapshot left open by a head check is ended in the same round trip.
        Otherwise a head check that locks nothing: one query, and when the head moved (the
        caller catches up) a read-only snapshot whose head the catch-up follows."""
        if self._locked:
            return False
        seen_seq, seen_digest = self._read_seen()
        head_sql = (HEAD_SQL if lock else HEAD_CHECK) % int(seen_seq)
        self._news = None
        seen = self._seen_head
        if lock:
            prefix = "COMMIT; BEGIN" if self._in_txn else "BEGIN"
        elif seen is not None and SAFE_NAME.fullmatch(seen.log) and not self._in_txn:
            # One statement: the head and what this view lacks of it. Enough, unless a
            # checkpoint switched logs or more records came than one fetch takes.
            rows = self._head_rows(HEAD_AND_NEWS.format(seen=int(seen_seq), log=seen.log,
                                                        end=int(seen.end), rows=FETCH_ROWS))
            news = [(int(r[4]), int(r[5]), bytes(r[6]), bytes(r[7]))
                    for r in rows if r[4] is not None]
            row = rows[0][:4] if rows else None
            if row is None or Head(*row[:3]) == seen or (
                    row[0] == seen.log and len(news) < FETCH_ROWS):
                if news:
                    self._news = (seen.log, seen.end, news)
                return self._took_head(row, seen_seq, seen_digest)
            prefix = SNAPSHOT_BEGIN
        else:
            prefix = SNAPSHOT_BEGIN if self._expect_moves else ""
        row = self._head_query(f"{prefix}; {head_sql}" if prefix else head_sql, lock)
        if not lock and not prefix and row is not None and Head(*row[:3]) != self._seen_head:
            self._expect_moves = True  # other hosts commit: fetch in a snapshot from now on
            row = self._head_query(f"{SNAPSHOT_BEGIN}; {head_sql}", lock)
        elif not lock and prefix and row is not None:
            self._expect_moves = Head(*row[:3]) != self._seen_head
        return self._took_head(row, seen_seq, seen_digest)

    def _head_rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self._conn_lock:
            conn = self._connection()
            try:
                rows = conn.execute(sql.encode()).fetchall()
            except psycopg.Error as exc:
                raise self._failed(exc) from None
        return rows

    def _head_query(self, sql: str, lock: bool) -> tuple[Any, ...] | None:
        """One simple-protocol query (integers inlined): the cheapest round trip psycopg
        makes, in CPU as in time. Its last statement reads the head row."""
        with self._conn_lock:
            conn = self._connection()
            try:
                cur = conn.execute(sql.encode())
                while cur.nextset():
                    pass
                row = cur.fetchone()
            except psycopg.Error as exc:
                if self._conn is not None and not self._conn.broken:
                    self._in_txn = True  # ROLLBACK the failed transaction
                raise self._failed(exc) from None
            self._in_txn = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
            self._locked, self._dirty = lock, False
        return row

    def _took_head(self, row: tuple[Any, ...] | None, seen_seq: int, seen_digest: bytes) -> bool:
        if row is None:
            self._abort_quietly()
            raise CorruptStoreError(f"the PostgreSQL database at {self.where} has lost the "
                                    "store's head row")
        log, end, seq, digest = row
        head = self._head = Head(log, end, seq)
        METRICS["pg_transactions"] += 1
        if seen_seq and (seen_seq > seq or (digest is not None and bytes(digest) != seen_digest)):
            self.divergence = (f"it holds commits up to {seen_seq} that PostgreSQL at "
                               f"{self.where} no longer has (restored from a backup?)")
            self._write_seen(0, bytes(32))
            METRICS["pg_rebuilds_for_lost_history"] += 1
        return head != self._seen_head

    def lock_for_write(self) -> bool:
        """A transaction begun with a head check writes: take the head row (one round trip).
        True when another host committed since the check (the caller catches up, in this
        transaction, and checks that what it read is unchanged)."""
        if self._locked:
            return False
        expected = self._head
        self.begin(lock=True)
        return self._head != expected

    def take_divergence(self) -> str | None:
        reason, self.divergence = self.divergence, None
        return reason

    def end(self, *, commit: bool) -> None:
        """End the open transaction. A read-only one that cannot be ended is dropped with its
        connection (nothing was written); a failed commit of changes is raised."""
        if not self._in_txn:  # a head check alone: the view is current if the caller says so
            self._seen_head = self._head if commit else None
            return
        dirty = self._dirty
        with self._conn_lock:
            try:
                self._connection().execute("COMMIT" if commit else "ROLLBACK")
            except psycopg.Error as exc:
                error = self._failed(exc)
                self._in_txn = self._dirty = self._locked = False
                self._seen_head = None
                if dirty and commit:
                    raise error from None
                return
            self._in_txn = self._dirty = self._locked = False
        self._seen_head = self._head if commit else None

    def _changing(self) -> None:
        """A change outside a commit (header, checkpoint switch, cleanup) must run in the
        locked transaction: after a commit in the same store transaction, lock again."""
        if not self._locked:
            expected = self._head
            self.begin(lock=True)
            if self._head != expected:
                self._abort_quietly()
                raise StoreError("another app server changed the store meanwhile; try again")
        self._dirty = True

    def commit_records(self, log: str, at: int, rows: list[tuple[int, int, bytes]], *,
                       end: int, seq: int, anchor: bytes) -> None:
        """The commit point: the records, the head and the anchor, committed together.

        The transaction commits without waiting for its WAL to reach the disk
        (``synchronous_commit`` off for it alone), so the head row is free for the next
        host at once; the flush row update that follows in the same round trip is an
        ordinary synchronous commit, which returns only once the WAL up to it, this
        commit's included, is on disk. PostgreSQL flushes the waiting sessions' WAL
        together: durable commits of several hosts share their fsyncs, as group commit
        does on one host.
        """
        head = self._head
        if not self._locked or head is None or (head.log, head.end) != (log, at):
            raise StoreError("a commit was attempted without holding the store's head")
        digests = [_digest(data) for _, _, data in rows]
        with self._conn_lock:
            conn = self._connection()
            try:
                with conn.pipeline():
                    conn.execute("SET LOCAL synchronous_commit = off")
                    with conn.cursor() as cur:
                        cur.executemany(INSERT_RECORD, [
                            (log, off, rseq, digest, data)
                            for (off, rseq, data), digest in zip(rows, digests, strict=True)])
                    conn.execute(MOVE_HEAD, (log, end, seq))
                    conn.execute(PUT_META, ("anchor", anchor))
                    conn.execute("COMMIT")
                    flushed = conn.execute(FLUSH_SQL, (self._flush_slot,))
            except psycopg.Error as exc:
                error = self._failed(exc)
                if not (isinstance(error, pg_schema.StorageUnavailableError)
                        and self._made(log, rows[0][0], digests[0])):
                    raise error from None
                METRICS["pg_commits_found_after_reconnect"] += 1
                flushed = None
            self._in_txn = self._dirty = self._locked = False
            if flushed is not None and flushed.rowcount != 1:
                raise CorruptStoreError(f"the PostgreSQL database at {self.where} lacks the "
                                        "store's flush rows")
        self._head = self._seen_head = Head(log, end, seq)
        METRICS["pg_commits"] += 1
        self.saw(seq, digests[-1])

    def _made(self, log: str, offset: int, digest: bytes) -> bool:
        """Whether a commit whose reply was lost (the connection dropped, PostgreSQL
        restarted) was made: its first record, sealed with a nonce of its own, is its id.
        Waits up to ``OUTCOME_SECONDS`` for the server to answer again; then, if it was made,
        for its WAL flush. False when it was not made or the outcome stays unknown."""
        deadline = time.monotonic() + min(OUTCOME_SECONDS, max(self._timeout, 1.0))
        while True:
            try:
                rows = self._run("SELECT digest FROM deltadb_records WHERE log = %s AND off = %s",
                                 (log, offset))
                if not rows or bytes(rows[0][0]) != digest:
                    return False
                self._run(FLUSH_SQL, (self._flush_slot,))  # a later commit, flushed: ours too
                return True
            except pg_schema.StorageUnavailableError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.2)
            except StoreError:
                return False

    # --- what this host has seen ----------------------------------------------------------

    def _seen_file(self) -> int:
        if self._seen_fd < 0:
            self._seen_fd = os.open(self.location / SEEN_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        return self._seen_fd

    def _read_seen(self) -> tuple[int, bytes]:
        try:
            data = os.pread(self._seen_file(), SEEN.size, 0)
        except OSError:
            return 0, bytes(32)
        if len(data) != SEEN.size:
            return 0, bytes(32)
        seq, digest = SEEN.unpack(data)
        return int(seq), bytes(digest)

    def _write_seen(self, seq: int, digest: bytes) -> None:
        """No sync: it trails the replica, and losing it only weakens one check."""
        try:
            os.pwrite(self._seen_file(), SEEN.pack(seq, digest), 0)
        except OSError:
            pass

    def saw(self, seq: int, digest: bytes) -> None:
        self._write_seen(seq, bytes(digest))

    # --- the place --------------------------------------------------------------------

    def exists(self) -> bool:
        with self._conn_lock:
            conn = self._connection()
            try:
                missing = pg_schema.missing_tables(conn)
            except psycopg.Error as exc:
                raise self._failed(exc) from None
        if missing:
            if len(missing) < len(pg_schema.TABLES) or not self._create:
                raise CorruptStoreError(
                    f"the PostgreSQL database at {self.where} holds no DeltaDB store "
                    f"(table {missing[0]} is missing): create it by opening it once with "
                    "create=true, or move a store there with migrate-storage")
            return False
        return bool(self._run("SELECT 1 FROM deltadb_meta WHERE name = 'header'"))

    def create(self) -> None:
        self.location.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._conn_lock:
            pg_schema.create_tables(self._connection(), self.url)

    def check_writable(self) -> None:
        self.location.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(self.location, os.W_OK):
            raise StoreError(f"the replica directory {self.location} is not writable")

    def writer_lock(self) -> StoreLock:
        if self._lock is None:
            self._lock = PgLock(self.location / LOCK_NAME, timeout=self._timeout, storage=self)
        return self._lock

    # --- the header ---------------------------------------------------------------------

    def read_header(self) -> tuple[dict[str, Any], str]:
        rows = self._run("SELECT data FROM deltadb_meta WHERE name = 'header'")
        if not rows:
            raise CorruptStoreError(f"the PostgreSQL database at {self.where} holds no DeltaDB "
                                    "store (no header)")
        try:
            document = orjson.loads(bytes(rows[0][0]))
            return document["body"], document["mac"]
        except (ValueError, KeyError, TypeError):
            raise CorruptStoreError(f"the store header in {self.where} is damaged") from None

    def write_header(self, header: Header, mac_for: Callable[[bytes], str]) -> None:
        body = header.body()
        document = orjson.dumps({"body": body, "mac": mac_for(Header.canonical(body))},
                                option=orjson.OPT_INDENT_2)
        self._changing()
        self._run(PUT_META, ("header", document))
        name = header.log["file"]
        head = self._head
        if head is not None and head.log != name:  # a new store, or a checkpoint's switch
            end = self.log_size(name)
            self._run(MOVE_HEAD, (name, end, head.seq))
            self._head = Head(name, end, head.seq)

    # --- the log ------------------------------------------------------------------------

    def new_log_name(self) -> str:
        return new_file_name("log")

    def create_log(self, name: str, *, store_id: bytes, base_seq: int,
                   keyring: Keyring) -> PgLog:
        head = FILE_HEADER.pack(FILE_MAGIC, store_id, base_seq)
        head += CRC.pack(zlib.crc32(head))
        self._changing()
        self._run("INSERT INTO deltadb_logs (name, data) VALUES (%s, %s)", (name, head))
        return PgLog(self, name, head, store_id=store_id, keyring=keyring)

    def open_log(self, name: str, *, store_id: bytes, keyring: Keyring) -> PgLog:
        rows = self._run("SELECT data FROM deltadb_logs WHERE name = %s", (name,))
        if not rows:
            raise CorruptStoreError(f"the store's log {name} is missing from PostgreSQL")
        return PgLog(self, name, bytes(rows[0][0]), store_id=store_id, keyring=keyring)

    def log_replaced(self, log: Any) -> bool:
        """Whether a checkpoint (of any host) replaced this log (known from the head row
        the open transaction locked: no query)."""
        head = self._head
        return head is not None and head.log != log.name

    def log_grew_past(self, log: Any, offset: int) -> bool:
        head = self._head
        return head is not None and head.log == log.name and head.end > offset

    def log_size(self, name: str) -> int:
        rows = self._run("SELECT coalesce(max(off + length(data)), 0) FROM deltadb_records "
                         "WHERE log = %s", (name,))
        return int(rows[0][0]) or FILE_HEADER.size + CRC.size

    def fetch_records(self, log: str, offset: int, limit: int,
                      ) -> list[tuple[int, int, bytes, bytes]]:
        news, self._news = self._news, None
        if news is not None and news[0] == log and news[1] == offset and limit >= FETCH_ROWS:
            return news[2]
        head = self._head
        rows = self._run("SELECT off, seq, digest, data FROM deltadb_records WHERE log = %s "
                         "AND off >= %s ORDER BY off LIMIT %s", (log, offset, limit))
        found = [(int(off), int(seq), bytes(digest), bytes(data))
                 for off, seq, digest, data in rows]
        if (not self._in_txn and head is not None and head.log == log and len(found) < limit
                and (found[-1][0] + len(found[-1][3]) if found else offset) < head.end):
            # Outside a snapshot, a checkpoint of another host discarded this log meanwhile.
            raise pg_schema.StorageUnavailableError(
                f"the store's log in PostgreSQL at {self.where} was replaced while this host "
                "caught up with it; try again")
        return found

    def fetch_range(self, log: str, start: int, end: int) -> list[tuple[int, bytes]]:
        rows = self._run("SELECT off, data FROM deltadb_records WHERE log = %s AND off >= %s "
                         "AND off < %s ORDER BY off", (log, start, end))
        return [(int(off), bytes(data)) for off, data in rows]

    def insert_rows(self, log: str, rows: list[tuple[int, int, bytes]]) -> None:
        self._changing()
        with self._conn_lock:
            try:
                with self._connection().cursor() as cur:
                    cur.executemany(INSERT_RECORD, [(log, off, seq, _digest(data), data)
                                                    for off, seq, data in rows])
            except psycopg.Error as exc:
                raise self._failed(exc) from None

    def has_record(self, log: str, offset: int, *, exact: bool) -> bool:
        compare = "=" if exact else ">="
        return bool(self._run(f"SELECT 1 FROM deltadb_records WHERE log = %s "  # noqa: S608
                              f"AND off {compare} %s LIMIT 1", (log, offset)))

    def delete_records(self, log: str, at: int) -> None:
        self._changing()
        self._run("DELETE FROM deltadb_records WHERE log = %s AND off >= %s", (log, at))

    # --- snapshots ----------------------------------------------------------------------

    def _cached_snapshot(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise CorruptStoreError(f"header names an invalid snapshot {name!r}")
        return self.location / f"pgcache-{name}"

    def write_snapshot(self, *, store_id: bytes, seq: int, kid: int, sealed_catalog: bytes,
                       entries: Iterable[Entry]) -> dict[str, Any]:
        """Seal the snapshot into this host's cache file, then upload it in parts through a
        connection of its own (a background checkpoint runs beside transactions)."""
        name = new_file_name("snap")
        path = self._cached_snapshot(name)
        digest = write_snapshot(path, store_id=store_id, seq=seq, kid=kid,
                                sealed_catalog=sealed_catalog, entries=entries)
        try:
            with pg_schema.connect(self.url, timeout=self._timeout) as conn, \
                    conn.transaction(), open(path, "rb") as handle:
                part = 0
                while chunk := handle.read(SNAPSHOT_PART):
                    conn.execute("INSERT INTO deltadb_snapshots (name, part, data) "
                                 "VALUES (%s, %s, %s)", (name, part, chunk))
                    part += 1
        except psycopg.Error as exc:
            path.unlink(missing_ok=True)
            raise pg_schema.statement_error(self.url, exc) from None
        return {"file": name, "seq": seq, "sha256": digest}

    def open_snapshot(self, info: dict[str, Any], *, store_id: bytes) -> Snapshot:
        path = self._cached_snapshot(info["file"])
        if path.exists():
            try:
                return Snapshot(path, store_id=store_id, expected_sha256=info["sha256"])
            except (TamperError, CorruptStoreError):
                path.unlink(missing_ok=True)  # a stale or damaged cache: fetch it again
        self._download_snapshot(info["file"], path)
        return Snapshot(path, store_id=store_id, expected_sha256=info["sha256"])

    def _download_snapshot(self, name: str, path: Path) -> None:
        parts = self._run("SELECT count(*) FROM deltadb_snapshots WHERE name = %s", (name,))
        count = int(parts[0][0])
        if not count:
            raise CorruptStoreError(f"the store's snapshot {name} is missing from PostgreSQL")
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as out:
            for part in range(count):
                rows = self._run("SELECT data FROM deltadb_snapshots WHERE name = %s "
                                 "AND part = %s", (name, part))
                if not rows:
                    raise CorruptStoreError(f"snapshot {name} in PostgreSQL lacks part {part}")
                out.write(bytes(rows[0][0]))
        os.replace(tmp, path)

    def snapshot_size(self, info: dict[str, Any]) -> int:
        rows = self._run("SELECT coalesce(sum(length(data)), 0) FROM deltadb_snapshots "
                         "WHERE name = %s", (info["file"],))
        return int(rows[0][0])

    def discard(self, names: Iterable[str]) -> None:
        names = list(names)
        self._changing()
        self._run("DELETE FROM deltadb_records WHERE log = ANY(%s)", (names,))
        self._run("DELETE FROM deltadb_logs WHERE name = ANY(%s)", (names,))
        self._run("DELETE FROM deltadb_snapshots WHERE name = ANY(%s)", (names,))
        for name in names:
            if name.startswith("snap-"):
                self._cached_snapshot(name).unlink(missing_ok=True)

    def remove_leftovers(self, live: set[str]) -> None:
        """Logs no header names (lock held: no switch is under way) and snapshots a crashed
        checkpoint uploaded long ago; this host's stale cache files."""
        names = sorted(live)
        self._changing()
        self._run("DELETE FROM deltadb_records WHERE log <> ALL(%s)", (names,))
        self._run("DELETE FROM deltadb_logs WHERE name <> ALL(%s)", (names,))
        old_enough = f"created < now() - interval '{LEFTOVER_AGE}'"  # a constant
        self._run(f"DELETE FROM deltadb_snapshots WHERE name <> ALL(%s) AND {old_enough}",  # noqa: S608
                  (names,))
        for path in self.location.glob("pgcache-*"):
            if path.name.removeprefix("pgcache-") not in live:
                path.unlink(missing_ok=True)
        for path in self.location.glob(".pgcache-*.tmp"):
            path.unlink(missing_ok=True)

    # --- the commit anchor ----------------------------------------------------------------

    def read_anchor(self) -> bytes | None:
        rows = self._run("SELECT data FROM deltadb_meta WHERE name = 'anchor'")
        return bytes(rows[0][0]) if rows else None

    def write_anchor(self, data: bytes) -> None:
        """Nothing to do: each commit moved the anchor in its own transaction."""

    # --- copies and facts -----------------------------------------------------------------

    def copy_to(self, target: Path, names: Iterable[str]) -> None:
        """Write the named logs and snapshots, and the anchor, as a store directory's files
        (caller holds the store): the bytes are the same on both storages."""
        for name in names:
            if name == HEADER_NAME:
                body, mac = self.read_header()
                (target / name).write_bytes(orjson.dumps({"body": body, "mac": mac},
                                                         option=orjson.OPT_INDENT_2))
                continue
            if name.startswith("snap-"):
                self._download_snapshot(name, target / name)
                continue
            head = self._run("SELECT data FROM deltadb_logs WHERE name = %s", (name,))
            if not head:
                raise CorruptStoreError(f"the store's log {name} is missing from PostgreSQL")
            with open(target / name, "wb") as out:
                out.write(bytes(head[0][0]))
                offset = FILE_HEADER.size + CRC.size
                while rows := self.fetch_records(name, offset, FETCH_ROWS):
                    for off, _, _, data in rows:
                        if off != offset:
                            raise CorruptStoreError("the log in PostgreSQL lacks records")
                        out.write(data)
                        offset += len(data)
                out.flush()
                os.fsync(out.fileno())
        anchor = self.read_anchor()
        if anchor is not None:
            (target / ANCHOR_NAME).write_bytes(anchor)

    def import_files(self, source: Path, *, log: str, snapshot: str | None) -> None:
        """Take over a store directory's files (a new, empty store; caller holds it): the
        header, the log's records, the snapshot and the anchor, as the same bytes."""
        self._changing()
        self._run(PUT_META, ("header", (source / HEADER_NAME).read_bytes()))
        start = FILE_HEADER.size + CRC.size
        with open(source / log, "rb") as handle:
            head = handle.read(start)
            self._run("INSERT INTO deltadb_logs (name, data) VALUES (%s, %s)", (log, head))
            end, seq = self._import_records(log, handle, start,
                                            base_seq=FILE_HEADER.unpack_from(head)[2])
        self._run(MOVE_HEAD, (log, end, seq))
        self._head = Head(log, end, seq)
        if snapshot is not None:
            with open(source / snapshot, "rb") as handle:
                part = 0
                while chunk := handle.read(SNAPSHOT_PART):
                    self._run("INSERT INTO deltadb_snapshots (name, part, data) "
                              "VALUES (%s, %s, %s)", (snapshot, part, chunk))
                    part += 1
        anchor = source / ANCHOR_NAME
        if anchor.exists():
            self._run(PUT_META, ("anchor", anchor.read_bytes()))

    def _import_records(self, log: str, handle: Any, start: int, *,
                        base_seq: int) -> tuple[int, int]:
        """A log file's whole records from ``handle`` (at ``start``) into rows, read in parts
        (a store of any size moves in bounded memory); where and at which sequence number
        they end (before preallocated zeros or a torn write)."""
        step = RECORD_HEADER.size + CRC.size
        pending, at, seq = b"", start, base_seq
        while chunk := handle.read(IMPORT_PART):
            pending += chunk
            whole = whole_records_end(pending, 0)
            if whole:
                rows = split_records(pending[:whole], at)
                for first in range(0, len(rows), FETCH_ROWS):
                    self.insert_rows(log, rows[first:first + FETCH_ROWS])
                at, seq, pending = at + whole, rows[-1][1], pending[whole:]
            if len(pending) >= step and CRC.unpack_from(pending, RECORD_HEADER.size)[0] != (
                    zlib.crc32(pending[:RECORD_HEADER.size])):
                break  # not a record's header: the records end here
        return at, seq

    def sizes(self) -> dict[str, int]:
        rows = self._run(
            "SELECT 'header', length(data) FROM deltadb_meta WHERE name = 'header' "
            "UNION ALL SELECT log, sum(length(data)) + 36 FROM deltadb_records GROUP BY log "
            "UNION ALL SELECT name, sum(length(data)) FROM deltadb_snapshots GROUP BY name")
        return {str(name): int(size) for name, size in rows}

    def after_fork_in_child(self) -> None:
        """The parent's connection is its own: never used nor closed here (closing it would
        end the parent's session)."""
        if self._conn is not None:
            self._abandoned.append(self._conn)
        self._conn = None
        self._in_txn = self._dirty = self._locked = False
        self._seen_head = None
        self._conn_lock = threading.RLock()

    def close(self) -> None:
        if self._in_txn:
            self._abort_quietly()
        if self._conn is not None:
            self._drop_connection()
        if self._seen_fd >= 0:
            os.close(self._seen_fd)
            self._seen_fd = -1
        if self._lock is not None:
            self._lock.close()

