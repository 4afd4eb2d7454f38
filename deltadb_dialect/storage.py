"""Where a store's durable state lives, and how its writers are serialized.

The SQL side of the store (replica, capture, sealing, replay) never touches a
file: it asks a ``Storage`` for the sealed header, the log, snapshots and the
commit anchor, and for the lock that serializes writers. Everything a storage
holds is already ciphertext or MAC'd; a storage never sees a key.

``DirectoryStorage`` keeps them in one directory (see ``layout.py``) and
serializes writers with ``flock`` (see ``lock.py``). A storage on a shared
database server implements the same protocol: the log becomes rows by
sequence number, the lock a row or advisory lock held by the transaction that
appends the record, the anchor that table's last committed sequence number.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from deltadb_dialect.errors import CorruptStoreError, StorageFullError, StoreError
from deltadb_dialect.keys import Keyring
from deltadb_dialect.layout import Header, StoreLayout, new_file_name
from deltadb_dialect.lock import StoreLock
from deltadb_dialect.log import Entry, LogFile, Record
from deltadb_dialect.snapshot import Snapshot, write_snapshot


class Log(Protocol):
    """The append-only log of sealed records since the current snapshot."""

    start: int  # the position of the first record
    base_seq: int  # the sequence number just before the first record

    def records(self, offset: int, expected_seq: int,
                acknowledged: Callable[[], int | None] | None = None) -> Iterator[Record]: ...

    def append(self, records: list[tuple[int, int, bytes]], at: int, *,
               sync: bool = True) -> int: ...

    def sync(self) -> None: ...

    def has_data_at(self, offset: int) -> bool: ...

    def has_data_after(self, offset: int) -> bool: ...

    def truncate(self, at: int) -> None: ...

    def read_range(self, start: int, end: int) -> bytes: ...

    def append_raw(self, data: bytes, at: int) -> int: ...

    def close(self) -> None: ...


class Storage(Protocol):
    """The durable state of one store, behind the lock that serializes its writers."""

    location: Path  # what names the store in messages and in the process registry
    # Whether a checkpoint may write its new log outside a store transaction, beside the
    # commits (files of its own); False when every write goes through the one transaction
    # that holds the writers' lock (a database server's storage).
    writes_beside_transactions: bool

    def exists(self) -> bool: ...

    def create(self) -> None: ...

    def check_writable(self) -> None: ...

    def writer_lock(self) -> StoreLock: ...

    def read_header(self) -> tuple[dict[str, Any], str]: ...

    def write_header(self, header: Header, mac_for: Callable[[bytes], str]) -> None: ...

    def new_log_name(self) -> str: ...

    def create_log(self, name: str, *, store_id: bytes, base_seq: int,
                   keyring: Keyring) -> Log: ...

    def open_log(self, name: str, *, store_id: bytes, keyring: Keyring) -> Log: ...

    def log_replaced(self, log: Log) -> bool: ...

    def log_grew_past(self, log: Log, offset: int) -> bool: ...

    def write_snapshot(self, *, store_id: bytes, seq: int, kid: int, sealed_catalog: bytes,
                       entries: Iterable[Entry]) -> dict[str, Any]: ...

    def open_snapshot(self, info: dict[str, Any], *, store_id: bytes) -> Snapshot: ...

    def snapshot_size(self, info: dict[str, Any]) -> int: ...

    def discard(self, names: Iterable[str]) -> None: ...

    def remove_leftovers(self, live: set[str]) -> None: ...

    def read_anchor(self) -> bytes | None: ...

    def write_anchor(self, data: bytes) -> None: ...

    def copy_to(self, target: Path, names: Iterable[str]) -> None: ...

    def sizes(self) -> dict[str, int]: ...

    def take_divergence(self) -> str | None: ...

    def close(self) -> None: ...


class DirectoryStorage:
    """A store kept in one directory of the local file system."""

    writes_beside_transactions = True

    def __init__(self, root: str | os.PathLike[str], *, timeout: float) -> None:
        self.layout = StoreLayout(root)
        self.location = self.layout.root
        self._timeout = timeout
        self._anchor_fd = -1
        self._lock: StoreLock | None = None

    # --- the place --------------------------------------------------------------------

    def exists(self) -> bool:
        return self.layout.exists()

    def create(self) -> None:
        self.layout.create_directory()

    def check_writable(self) -> None:
        if not os.access(self.location, os.W_OK):
            raise StorageFullError(f"the store directory {self.location} is not writable")

    def writer_lock(self) -> StoreLock:
        if self._lock is None:
            self._lock = StoreLock(self.layout.lock, timeout=self._timeout)
        return self._lock

    # --- the header ---------------------------------------------------------------------

    def read_header(self) -> tuple[dict[str, Any], str]:
        return self.layout.read_header_json()

    def write_header(self, header: Header, mac_for: Callable[[bytes], str]) -> None:
        self.layout.write_header(header, mac_for)

    # --- the log ------------------------------------------------------------------------

    def new_log_name(self) -> str:
        return new_file_name("log")

    def create_log(self, name: str, *, store_id: bytes, base_seq: int,
                   keyring: Keyring) -> LogFile:
        return LogFile.create(self.layout.file(name), store_id=store_id, base_seq=base_seq,
                              keyring=keyring)

    def open_log(self, name: str, *, store_id: bytes, keyring: Keyring) -> LogFile:
        return LogFile(self.layout.file(name), store_id=store_id, keyring=keyring)

    def log_replaced(self, log: Log) -> bool:
        """Whether a checkpoint (of any process) replaced this log since it was opened."""
        assert isinstance(log, LogFile)
        return os.fstat(log.fileno()).st_nlink == 0

    def log_grew_past(self, log: Log, offset: int) -> bool:
        """Whether anything was written at ``offset`` (cheap: one fstat, then one read)."""
        assert isinstance(log, LogFile)
        return os.fstat(log.fileno()).st_size > offset and log.has_data_at(offset)

    # --- snapshots ----------------------------------------------------------------------

    def write_snapshot(self, *, store_id: bytes, seq: int, kid: int, sealed_catalog: bytes,
                       entries: Iterable[Entry]) -> dict[str, Any]:
        name = new_file_name("snap")
        digest = write_snapshot(self.layout.file(name), store_id=store_id, seq=seq, kid=kid,
                                sealed_catalog=sealed_catalog, entries=entries)
        return {"file": name, "seq": seq, "sha256": digest}

    def open_snapshot(self, info: dict[str, Any], *, store_id: bytes) -> Snapshot:
        return Snapshot(self.layout.file(info["file"]), store_id=store_id,
                        expected_sha256=info["sha256"])

    def snapshot_size(self, info: dict[str, Any]) -> int:
        try:
            return self.layout.file(info["file"]).stat().st_size
        except OSError:
            return 0

    def discard(self, names: Iterable[str]) -> None:
        for name in names:
            self.layout.file(name).unlink(missing_ok=True)

    def remove_leftovers(self, live: set[str]) -> None:
        """Files a crash left behind mid-checkpoint (lock held: nobody is writing them)."""
        for path in self.location.iterdir():
            leftover = path.name.endswith(".tmp") or (
                path.name.startswith(("log-", "snap-")) and path.name not in live)
            if leftover and path.is_file():
                path.unlink(missing_ok=True)

    # --- the commit anchor ----------------------------------------------------------------

    def read_anchor(self) -> bytes | None:
        try:
            return self.layout.anchor.read_bytes()
        except FileNotFoundError:
            return None

    def write_anchor(self, data: bytes) -> None:
        """One pwrite into a file kept open (no sync: it trails the log's own sync)."""
        try:
            if self._anchor_fd < 0:
                self._anchor_fd = os.open(self.layout.anchor, os.O_WRONLY | os.O_CREAT, 0o600)
            os.pwrite(self._anchor_fd, data, 0)
        except OSError:
            self._close_anchor()  # reopened next time; the anchor only strengthens detection

    def _close_anchor(self) -> None:
        if self._anchor_fd >= 0:
            try:
                os.close(self._anchor_fd)
            except OSError:
                pass
            self._anchor_fd = -1

    # --- copies and facts -----------------------------------------------------------------

    def copy_to(self, target: Path, names: Iterable[str]) -> None:
        """Copy the named files and the anchor (caller holds the writer lock)."""
        import shutil

        for name in names:
            shutil.copy2(self.layout.file(name), target / name)
        if self.layout.anchor.exists():
            shutil.copy2(self.layout.anchor, target / self.layout.anchor.name)

    def sizes(self) -> dict[str, int]:
        return {p.name: p.stat().st_size for p in self.location.iterdir() if p.is_file()}

    def take_divergence(self) -> str | None:
        """Why the replica holds commits the storage no longer has (a directory's replica
        is checked against its log at open instead)."""
        return None

    def close(self) -> None:
        self._close_anchor()
        if self._lock is not None:
            self._lock.close()


def split_location(path: str | os.PathLike[str]) -> tuple[str, str | None]:
    """A location is a directory, or ``DIRECTORY?storage=URL`` (a host's replica directory
    and the database server that holds the store)."""
    text = os.fspath(path)
    directory, marker, url = text.partition("?storage=")
    return (directory, url or None) if marker else (text, None)


def describe_location(path: str | os.PathLike[str]) -> str:
    """A location for messages: the storage URL's password left out."""
    directory, url = split_location(path)
    if not url:
        return directory
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    return f"{directory}?storage={url}"


def open_storage(path: str | os.PathLike[str], *, timeout: float, storage: str | None = None,
                 create: bool = True) -> Storage:
    """The storage a store's location names: a directory, or PostgreSQL (``storage``)."""
    directory, named = split_location(path)
    url = storage or named
    if not directory:
        raise CorruptStoreError("a store location is required")
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise StoreError(f"unknown storage {url.split(':', 1)[0]!r}: a storage URL "
                             "starts with postgresql://")
        from deltadb_dialect.pg_storage import PgStorage  # psycopg only when it is used

        return PgStorage(directory, url, timeout=timeout, create=create)
    return DirectoryStorage(directory, timeout=timeout)
