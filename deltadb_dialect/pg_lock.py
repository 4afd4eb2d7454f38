"""The writer lock of a store kept in PostgreSQL.

The host's own lock (process mutex and flock, as for a directory store: the host's processes
share its replica) and, inside it, the PostgreSQL transaction that holds the store's head row
for every host. Taking it tells the caller to catch up when the host's lock was taken afresh
or when another host committed since this process's last transaction.

Batching: a transaction that wrote nothing, ending while other threads of this process wait
for the store, leaves the PostgreSQL transaction open for the next one (at most
``BATCH_LIMIT`` in a row). The head row stays locked, so nothing can have changed in
between: the next transaction starts without a round trip. Busy app servers thus pay one
head check for a run of reads instead of one each; other hosts wait at most for the run.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from deltadb_dialect.errors import StoreError
from deltadb_dialect.lock import StoreLock

if TYPE_CHECKING:
    from deltadb_dialect.pg_storage import PgStorage

BATCH_LIMIT = 16  # read-only transactions run in one PostgreSQL transaction, at most

class PgLock(StoreLock):
    """The host's lock (process mutex and flock, as for a directory store) and, inside it,
    the PostgreSQL transaction that holds the store's head row for every host."""

    def __init__(self, path: Path, *, timeout: float, storage: PgStorage) -> None:
        super().__init__(path, timeout=timeout)
        self._storage = storage
        self._waiting = 0  # threads of this process in ``acquire``
        self._count_lock = threading.Lock()
        self._batch = 0  # transactions run in the open PostgreSQL transaction so far

    def hold(self) -> None:
        super().hold()
        try:
            self._storage.begin()
        except BaseException:
            super().unhold()
            raise

    def unhold(self) -> None:
        try:
            self._storage.end(commit=True)
        finally:
            super().unhold()

    def acquire(self, wait: float) -> bool:
        """True when the caller must catch up: the host's lock was taken afresh, or another
        host committed since this process's last transaction."""
        with self._count_lock:
            self._waiting += 1
        try:
            fresh = super().acquire(wait)
        except BaseException:
            self._end_orphaned_batch()
            raise
        finally:
            with self._count_lock:
                self._waiting -= 1
        try:
            moved = self._storage.begin()
        except BaseException:
            super().abort()
            raise
        return fresh or moved

    def would_wait(self) -> bool:
        """Always: every transaction begins with a round trip to PostgreSQL (so callers that
        run short work on an event loop when the store is free hand it to a thread instead,
        and a server cut off from PostgreSQL never stalls its loop)."""
        return True

    def abort(self) -> None:
        try:
            self._storage.end(commit=False)
        finally:
            super().abort()

    def release(self) -> None:
        if (self._waiting and self._batch < BATCH_LIMIT and self.flock_held
                and self._storage.read_only()):
            # The next thread's transaction runs in this one: keep the host's lock too (other
            # processes of the host would otherwise wait for the head row while holding it).
            self._batch += 1
            self.owner_thread = None
            self.mutex.release()
            return
        self._batch = 0
        try:
            self._storage.end(commit=True)
        finally:
            super().release()

    def unlock_file(self) -> None:
        """The host's lock goes (idle, or another process asks): a batch left open ends
        first, so that no process holds the head row without the host's lock."""
        if self.owner_thread is None and self._storage.read_only():
            self._batch = 0
            try:
                self._storage.end(commit=True)
            except StoreError:
                pass  # a read-only transaction: its connection is dropped, nothing is lost
        super().unlock_file()

    def _end_orphaned_batch(self) -> None:
        """A waiter gave up: end a batch left open for it, if nobody else will."""
        if self._waiting <= 1 and self.mutex.acquire(blocking=False):
            try:
                if self.owner_thread is None:
                    self._batch = 0
                    self._storage.end(commit=True)
            finally:
                self.mutex.release()

    def after_fork_in_child(self) -> None:
        super().after_fork_in_child()
        self._storage.after_fork_in_child()
