"""The writer lock of a store kept in PostgreSQL.

The host's own lock (process mutex and flock, as for a directory store: the host's processes
share its replica) and, inside it, the PostgreSQL transaction that holds the store's head row
for every host. Taking it tells the caller to catch up when the host's lock was taken afresh
or when another host committed since this process's last transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deltadb_dialect.lock import StoreLock

if TYPE_CHECKING:
    from deltadb_dialect.pg_storage import PgStorage


class PgLock(StoreLock):
    """The host's lock (process mutex and flock, as for a directory store) and, inside it,
    the PostgreSQL transaction that holds the store's head row for every host."""

    def __init__(self, path: Path, *, timeout: float, storage: PgStorage) -> None:
        super().__init__(path, timeout=timeout)
        self._storage = storage

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
        fresh = super().acquire(wait)
        try:
            moved = self._storage.begin()
        except BaseException:
            super().abort()
            raise
        return fresh or moved

    def abort(self) -> None:
        try:
            self._storage.end(commit=False)
        finally:
            super().abort()

    def release(self) -> None:
        try:
            self._storage.end(commit=True)
        finally:
            super().release()

    def after_fork_in_child(self) -> None:
        super().after_fork_in_child()
        self._storage.after_fork_in_child()
