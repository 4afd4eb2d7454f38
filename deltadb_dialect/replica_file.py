"""The replica's file on this host: an encrypted SQLite database shared by its processes.

The replica is a disposable materialization of the log: SQLite3 Multiple Ciphers
(``apsw-sqlite3mc``) encrypts and authenticates every page (ChaCha20-Poly1305) under a
key derived from the store key, which is never written anywhere. WAL mode lets the
host's processes share one file; ``synchronous=NORMAL`` means a commit writes the WAL
without a sync of its own (the log's sync is the commit point; a replica transaction
lost to a power cut is replayed from the log). ``temp_store=MEMORY`` keeps SQLite's
temporary files (sorts, temporary tables) off the disk.

The replica's position in the log (the sequence number it has applied, and where
that commit's records are) lives in a hidden table updated in the same transaction
as the rows, so the file always says exactly which prefix of the log it holds.

Which file is current is named by ``store.replica`` (a random file name, nothing
else): a rebuild writes a new file, then points there, so a process still reading
the old one never sees a half-built database.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import apsw

from deltadb_dialect.layout import fsync_directory, write_file_atomic
from deltadb_dialect.replica import REPLICA_STATE_TABLE

FORMAT = 1  # the replica's own layout; another value (an older version): rebuilt
POINTER_NAME = "store.replica"
STATE_TABLE = REPLICA_STATE_TABLE
DEFAULT_CACHE_MB = 32.0
# What a damaged, truncated, foreign or missing replica file raises when opened or read.
UNUSABLE = (apsw.NotADBError, apsw.CorruptError, apsw.SQLError, apsw.CantOpenError,
            apsw.IOError, apsw.FormatError)

_STATE_SQL = (f"CREATE TABLE {STATE_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), "
              "format INTEGER NOT NULL, store_id BLOB NOT NULL, seq INTEGER NOT NULL, "
              "log_file TEXT NOT NULL, log_end INTEGER NOT NULL, "
              "commit_start INTEGER NOT NULL, commit_seq INTEGER NOT NULL, catalog BLOB)")
_READ_SQL = (f"SELECT format, store_id, seq, log_file, log_end, commit_start, commit_seq, "
             f"catalog FROM {STATE_TABLE} WHERE id = 1")
_POSITION_SQL = (f"UPDATE {STATE_TABLE} SET seq = ?, log_file = ?, log_end = ?, "
                 "commit_start = ?, commit_seq = ? WHERE id = 1")
_CATALOG_SQL = f"UPDATE {STATE_TABLE} SET catalog = ? WHERE id = 1"


@dataclass(frozen=True)
class Position:
    """Where in the log a replica stands: its last commit and where that commit's records are
    (``commit_start`` to ``log_end``, sequence numbers ``commit_seq`` to ``seq``)."""

    seq: int
    log_file: str
    log_end: int
    commit_start: int
    commit_seq: int


@dataclass(frozen=True)
class State:
    format: int
    store_id: bytes
    position: Position
    catalog: bytes | None  # the catalog (schema SQL, schema history) as JSON


def open_connection(path: Path, key: bytes, *, cache_mb: float,
                    building: bool = False) -> apsw.Connection:
    """An apsw connection to the encrypted replica at ``path`` (created if missing).

    ``building``: a file being filled from scratch, no journal and no syncs (it is
    published only once complete, see ``ReplicaFiles.publish``)."""
    if building:
        # owner-only, like the store's other files; SQLite gives its -wal and -shm the
        # database file's mode
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = apsw.Connection(str(path))
    conn.execute(f"PRAGMA hexkey = '{key.hex()}'")  # in memory only; never logged
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(f"PRAGMA cache_size = -{max(1024, int(cache_mb * 1024))}")
    conn.execute("PRAGMA mmap_size = 0")
    conn.set_busy_timeout(30_000)
    if building:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
    else:
        conn.execute("PRAGMA journal_mode = WAL")  # reads page 1: a wrong key fails here
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def finish_build(conn: apsw.Connection, path: Path) -> None:
    """Make a freshly built replica a shared one: WAL mode, its pages on stable storage."""
    # The pages on stable storage first, while the connection holds no lock: closing any
    # descriptor of a file drops every POSIX lock this process holds on it, SQLite's too,
    # and another process could then take the WAL index for unused and reset it under this
    # connection's mapping of it (a SIGBUS at its next commit).
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    conn.execute("PRAGMA synchronous = FULL")  # the switch to WAL is synced too
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")


def create_state(conn: apsw.Connection, *, store_id: bytes, position: Position) -> None:
    conn.execute(_STATE_SQL)
    conn.execute(f"INSERT INTO {STATE_TABLE} VALUES (1, ?, ?, ?, ?, ?, ?, ?, NULL)",
                 (FORMAT, store_id, position.seq, position.log_file, position.log_end,
                  position.commit_start, position.commit_seq))


def read_state(conn: apsw.Connection) -> State | None:
    """The replica's state, or None if it has none (an empty or foreign file)."""
    try:
        rows = conn.execute(_READ_SQL).fetchall()
    except apsw.SQLError:
        return None  # no such table (or another layout): not a replica of ours
    if not rows:
        return None
    fmt, store_id, seq, log_file, log_end, commit_start, commit_seq, catalog = rows[0]
    # apsw types each value as any SQLite value, None included; these columns are NOT NULL.
    position = Position(int(seq), str(log_file), int(log_end), int(commit_start),  # type: ignore[arg-type]
                        int(commit_seq))  # type: ignore[arg-type]
    return State(int(fmt), bytes(store_id), position,  # type: ignore[arg-type]
                 bytes(catalog) if catalog is not None else None)  # type: ignore[arg-type]


def write_position(conn: apsw.Connection, position: Position) -> None:
    """Record the replica's position (inside the transaction that applies the rows)."""
    conn.execute(_POSITION_SQL, (position.seq, position.log_file, position.log_end,
                                 position.commit_start, position.commit_seq))


def write_catalog(conn: apsw.Connection, catalog: bytes) -> None:
    conn.execute(_CATALOG_SQL, (catalog,))


class ReplicaFiles:
    """The replica files of one store in one directory of this host, and which is current."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pointer = directory / POINTER_NAME

    def path(self, name: str) -> Path:
        return self.directory / name

    def current(self) -> str | None:
        """The current replica's file name, or None if there is none yet."""
        name = self.named()
        return name if name is not None and self.path(name).exists() else None

    def named(self) -> str | None:
        """The file name the pointer gives, whether or not that file is still there."""
        try:
            name = self.pointer.read_text().strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        if not name.startswith("replica-") or "/" in name:
            return None
        return name

    def pointer_id(self) -> tuple[int, int] | None:
        """Changes whenever a rebuild publishes another file (cheap: one stat)."""
        try:
            status = os.stat(self.pointer)
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns

    @staticmethod
    def new_name() -> str:
        return f"replica-{secrets.token_hex(8)}.db"

    def publish(self, name: str) -> None:
        """Point at a complete replica, then remove every other replica file."""
        write_file_atomic(self.pointer, name.encode())
        self.remove_others(keep=name)

    def remove_others(self, *, keep: str | None) -> None:
        for path in self.directory.glob("replica-*"):
            if keep is None or not path.name.startswith(keep):  # keep its -wal and -shm too
                path.unlink(missing_ok=True)
        fsync_directory(self.directory)
