"""The writer lock of a store kept in PostgreSQL.

The host's own lock (process mutex and flock, as for a directory store: the host's processes
share its replica) and, inside it, what PostgreSQL is asked for every host:

* a transaction that begins with a read takes no lock in PostgreSQL: a head check (one query
  that locks nothing) tells whether other hosts committed since this process's view was
  current, so it sees every commit acknowledged before it began (read-after-write across
  hosts). Readers never hold writers up, on any host.
* a transaction that writes holds the store's head row from its first write to its commit
  (``lock_for_write``). If another host committed between the transaction's head check and
  that first write, the store catches up in the locked transaction and the connection checks
  that every read the transaction made returns the same rows (see ``dbapi.py``); if not, the
  transaction fails with a serialization error, to be retried, and nothing is written.
* a transaction that begins with a write (and opening, tools, checkpoints) takes the head row
  at once: one round trip, as the head check would be.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deltadb_dialect.lock import StoreLock

if TYPE_CHECKING:
    from deltadb_dialect.pg_storage import PgStorage


class PgLock(StoreLock):
    """The host's lock (process mutex and flock, as for a directory store) and, inside it,
    the head check or the head row in PostgreSQL."""

    kept_between_transactions = False  # each transaction begins with a round trip

    def __init__(self, path: Path, *, timeout: float, storage: PgStorage) -> None:
        super().__init__(path, timeout=timeout)
        self._storage = storage
        self._head_unlocked = False  # the transaction began with a head check, not the lock

    @property
    def checks_reads(self) -> bool:
        return self._head_unlocked

    def hold(self) -> None:
        super().hold()
        try:
            self._storage.begin(lock=True)
        except BaseException:
            super().unhold()
            raise

    def unhold(self) -> None:
        try:
            self._storage.end(commit=True)
        finally:
            super().unhold()

    def acquire(self, wait: float, *, write: bool = True) -> bool:
        """True when the caller must catch up: the host's lock was taken afresh, or another
        host committed since this process's last transaction."""
        fresh = super().acquire(wait)
        try:
            moved = self._storage.begin(lock=write)
        except BaseException:
            super().abort()
            raise
        self._head_unlocked = not write
        return fresh or moved

    def lock_for_write(self) -> bool:
        self._head_unlocked = False
        return self._storage.lock_for_write()

    def would_wait(self) -> bool:
        """Always: every transaction begins with a round trip to PostgreSQL (so callers that
        run short work on an event loop when the store is free hand it to a thread instead,
        and a server cut off from PostgreSQL never stalls its loop)."""
        return True

    def abort(self) -> None:
        self._head_unlocked = False
        try:
            self._storage.end(commit=False)
        finally:
            super().abort()

    def release(self) -> None:
        self._head_unlocked = False
        try:
            self._storage.end(commit=True)
        finally:
            super().release()

    def after_fork_in_child(self) -> None:
        super().after_fork_in_child()
        self._storage.after_fork_in_child()
