"""Deferred log syncs (group commit): commits written now, one sync later for all of them.

Commits made by a thread inside ``deferring()`` return once their record is written,
before the log is synced: visible at once to every transaction, durable only after
``make_durable(seq)``. For a caller that acknowledges nothing before that and can
gather commits: one sync then covers every commit written before it. A later
transaction may read a commit whose sync is still to come; anything it writes is
synced after it, so only a power loss in between could undo what such a reader saw.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from deltadb_dialect.errors import StoreError

if TYPE_CHECKING:
    from deltadb_dialect.storage import Log


class DeferredCommits:
    """What a ``deferring()`` block committed: the last sequence number, or None."""

    __slots__ = ("seq",)

    def __init__(self) -> None:
        self.seq: int | None = None


class GroupSync:
    """The highest sequence number on stable storage, and the commit written but not synced."""

    def __init__(self, on_synced: Callable[[int], None]) -> None:
        self.durable_seq = 0
        self._unsynced: tuple[Log, int] | None = None
        self._lock = threading.Lock()
        self.failure: str | None = None  # why syncing failed, once it has (the store stops)
        self._deferring = threading.local()
        self._on_synced = on_synced  # moves the anchor after a deferred sync

    @contextmanager
    def deferring(self) -> Iterator[DeferredCommits]:
        block = DeferredCommits()
        self._deferring.block = block
        try:
            yield block
        finally:
            self._deferring.block = None

    def current_block(self) -> DeferredCommits | None:
        """The calling thread's deferring block, if it is in one."""
        return getattr(self._deferring, "block", None)

    def written(self, log: Log, seq: int, *, synced: bool) -> None:
        """A commit was appended to ``log`` (and synced, unless deferred)."""
        if synced:
            self.durable_seq, self._unsynced = seq, None  # the sync covered earlier ones too
        else:
            self._unsynced = (log, seq)

    def covered(self, seq: int) -> None:
        """Everything up to ``seq`` was written durably some other way (a checkpoint)."""
        self.durable_seq = max(self.durable_seq, seq)
        self._unsynced = None

    def pending(self) -> int | None:
        """The last commit written but not synced, if any."""
        return None if self._unsynced is None else self._unsynced[1]

    def make_durable(self, seq: int) -> None:
        """Sync the log up to commit ``seq``; from any thread, while other transactions run."""
        if self.durable_seq >= seq:
            return
        with self._lock:
            if self.durable_seq >= seq:
                return  # another caller's sync covered it
            if self.failure is not None:
                raise StoreError(self.failure)
            unsynced = self._unsynced
            if unsynced is None:
                return  # a synced commit or a checkpoint covered it (and moved durable_seq)
            log, last = unsynced
            try:
                log.sync()
            except OSError as exc:
                if self.durable_seq >= seq:
                    return  # the log was replaced by a checkpoint, which is durable
                self.failure = (
                    f"the store's log could not be synced ({exc.strerror or exc}); commits "
                    "since the last sync may be lost: reopen the store"
                )
                raise StoreError(self.failure) from exc
            self.durable_seq = max(self.durable_seq, last)
            self._on_synced(last)
