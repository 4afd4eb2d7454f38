"""Group commit, as an application drives it: the documented driver-level API.

An application that acknowledges nothing to its users before a commit is durable,
and that runs many short transactions, can let several commits share one log sync::

    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def remember(dbapi_connection, _record):
        handles["store"] = dbapi_connection.group_commit()

    gc = handles["store"]
    if gc.ready():                       # taking the store now would not wait
        with gc.deferring() as written:  # commits of this thread: written, not synced
            ...                          # run transactions through the engine
        gc.make_durable(written.seq)     # one sync covers every commit written before it

``dbapi_connection.group_commit()`` is reached through SQLAlchemy (the ``connect``
event, or ``engine.raw_connection()``); the handle stays valid while the store is
open in this process and reports ``ready() == False`` once it is closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from deltadb_dialect.group_sync import DeferredCommits

if TYPE_CHECKING:
    from deltadb_dialect.store import Store


class GroupCommit:
    """Deferred syncs for one open store (see the module's documentation)."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def is_open(self) -> bool:
        return not self._store.closed

    def ready(self) -> bool:
        """Whether a transaction begun now would not wait: the store is open, this process
        kept its lock since its last transaction and no other thread has it. A hint (it
        can be stale at once): callers use it to choose where to run short work."""
        return not self._store.closed and not self._store.would_wait()

    @property
    def can_be_taken(self) -> bool:
        """Whether ``take`` can make the next transactions begin without waiting (a store on
        a directory; on a storage shared by hosts every transaction begins with a round trip)."""
        return self._store.lock.kept_between_transactions

    def take(self) -> None:
        """Take the store for this process (waiting for its other threads and for other
        processes, then catching up with their commits) and keep it for the transactions
        that follow, so that they begin without waiting. Blocks: call it from a thread."""
        store = self._store
        store.acquire()
        store.release()

    @contextmanager
    def deferring(self) -> Iterator[DeferredCommits]:
        """Commits by this thread in the block return once written, before the log's sync;
        the block's ``seq`` is the last one written (None: nothing committed)."""
        with self._store.deferring_sync() as block:
            yield block

    @contextmanager
    def not_waiting(self) -> Iterator[None]:
        """Transactions of this thread in the block never wait for the store: where one
        would (another thread of this process has it, or another process has the writer
        lock a first write needs), it fails with ``dbapi.LockNotAvailable`` (SQLSTATE
        55P03, as PostgreSQL's NOWAIT), having written nothing, and asks the holder to give
        the store up. With ``locking=first_write`` a transaction that only reads never
        waits for another process, so only transactions that write can fail this way."""
        with self._store.lock.not_waiting():
            yield

    def make_durable(self, seq: int | None = None) -> None:
        """Sync the log up to commit ``seq`` (default: the newest); from any thread."""
        self._store.make_durable(self._store.seq if seq is None else seq)

    @property
    def last_seq(self) -> int:
        """The newest commit this process has seen or written."""
        return self._store.seq

    @property
    def durable_seq(self) -> int:
        """The newest commit known to be on stable storage."""
        return self._store.durable_seq
