"""A checkpoint made beside the commits: pack, copy, then switch under the lock.

When a commit leaves the log due for a checkpoint (``Checkpointer.due``), a thread packs
the replica as of its last commit without the store's lock (in a child process for a
directory storage, see ``pack_worker.py``), copies the records committed meanwhile into
the next log through a descriptor of its own, in synced steps, and only then takes the
lock to copy the last few records and switch the header to the new snapshot and log. A
failed checkpoint only costs the work: commits go on, and the next attempt waits until
the log has grown by another checkpoint's worth.

``BackgroundCheckpoint`` owns the thread and the retry point; the store it serves
gives it the lock, its view of the log and the replica's position.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deltadb_dialect.errors import StoreError
from deltadb_dialect.pack_worker import PACK_CACHE_MB, pack_in_child, pack_replica_file
from deltadb_dialect.replica_file import Position
from deltadb_dialect.storage import DirectoryStorage, Log

if TYPE_CHECKING:
    from deltadb_dialect.store import Store

logger = logging.getLogger("deltadb_dialect")

TAIL_UNDER_LOCK = 1 << 20  # a checkpoint's switch copies at most about this much log
COPY_STEP = 16 << 20  # ... and copies the rest before it in steps of this much, each synced


@dataclass
class _NewLog:
    """A checkpoint's next log while it is filled: ``copied_to`` in the old log is ``end``."""

    name: str
    log: Log
    copied_to: int
    end: int


class BackgroundCheckpoint:
    """The background checkpoints of one open store: at most one at a time."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._thread: threading.Thread | None = None
        self._retry_at = 0  # after a failed checkpoint: the log offset to retry at

    def forget_failures(self) -> None:
        """Another log is current: a failure on the previous one says nothing of it."""
        self._retry_at = 0

    def after_commit(self, log: Log, log_end: int) -> None:
        """Start a checkpoint if the commit just made leaves the log due for one."""
        store = self._store
        if (self._thread is None and log_end >= self._retry_at
                and store.checkpointer.due(store.header, log, log_end)):
            self._thread = thread = threading.Thread(target=self._run, daemon=True,
                                                     name="deltadb-checkpoint")
            thread.start()

    def wait(self, timeout: float = 120.0) -> None:
        """Let a running checkpoint finish (before closing: its switch needs the lock)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        """Pack the replica as of its last commit without the lock, copy the commits made
        meanwhile into the new log, then switch under the lock (which copies the last few).
        A storage that takes every write in the writers' transaction gets its new log, and
        loses a failed one, under the lock only."""
        store = self._store
        beside = store.storage.writes_beside_transactions
        snapshot: dict[str, Any] | None = None
        prepared: _NewLog | None = None
        try:
            snapshot, point = self._pack()
            if beside:
                prepared = self._prepare_new_log(snapshot, point)
            store.acquire()
            try:
                if not store.closed:
                    if prepared is None:  # the switch copies every record
                        prepared = self._new_log_at(snapshot, point)
                    self._switch_to(snapshot, point, prepared)
                    snapshot = prepared = None  # in use
            finally:
                if not beside:
                    self._discard(snapshot, prepared)
                    snapshot = prepared = None
                store.release()
        except Exception as exc:  # noqa: BLE001 - a checkpoint only saves work; commits go on
            if not store.closed:
                logger.warning("a background checkpoint of %s failed: %s", store.location, exc)
            # not again at every commit: once the log has grown by another checkpoint's worth
            self._retry_at = store.position().log_end + store.options.checkpoint_bytes
        finally:
            if beside:  # otherwise a snapshot left when the lock was not had waits for the
                self._discard(snapshot, prepared)  # leftovers' clean-up
            self._thread = None

    def _discard(self, snapshot: dict[str, Any] | None, prepared: _NewLog | None) -> None:
        """Remove what a checkpoint that did not switch left behind."""
        storage = self._store.storage
        if prepared is not None:
            prepared.log.close()
            storage.discard([prepared.name])
        if snapshot is not None:
            storage.discard([snapshot["file"]])

    def _pack(self) -> tuple[dict[str, Any], Position]:
        store = self._store
        path = store.replica_path()
        if store.options.pack_in_process and isinstance(store.storage, DirectoryStorage):
            # another core, and no GIL shared with the commits made meanwhile
            return pack_in_child(location=store.location, path=path,
                                 store_key=store.keyring.store_key)
        return pack_replica_file(storage=store.storage, header=store.header,
                                 keyring=store.keyring, path=path, key=store.replica_key,
                                 cache_mb=min(PACK_CACHE_MB, store.options.replica_cache_mb))

    def _prepare_new_log(self, snapshot: dict[str, Any], point: Position) -> _NewLog:
        """The next log, already holding the records committed since the snapshot's point,
        copied without the lock (records before the log's known end never change): the
        switch then copies only what was committed during this copy."""
        store = self._store
        prepared = self._new_log_at(snapshot, point)
        name, log = prepared.name, prepared.log
        old: Log | None = None
        try:
            # a descriptor of our own: the commits' one may be closed by a catch-up meanwhile
            old = store.storage.open_log(point.log_file, store_id=store.header.store_id,
                                         keyring=store.keyring)
            for _round in range(4):
                end = self._known_end(point.log_file)
                if end is None or end - prepared.copied_to < TAIL_UNDER_LOCK:
                    break
                while prepared.copied_to < end:  # in synced steps: few dirty pages at once
                    step = min(end, prepared.copied_to + COPY_STEP)
                    prepared.end = log.append_raw(old.read_range(prepared.copied_to, step),
                                                  prepared.end)
                    prepared.copied_to = step
        except BaseException:
            log.close()
            store.storage.discard([name])
            raise
        finally:
            if old is not None:
                old.close()
        return prepared

    def _new_log_at(self, snapshot: dict[str, Any], point: Position) -> _NewLog:
        """The next log, empty: the records after the snapshot's point are still to copy."""
        store = self._store
        name, log = store.checkpointer.new_log(header=store.header, keyring=store.keyring,
                                               seq=snapshot["seq"])
        return _NewLog(name, log, point.log_end, log.start)

    def _known_end(self, log_file: str) -> int | None:
        """Where the store's last known record of ``log_file`` ends (None: another log)."""
        store = self._store
        with store.lock.mutex:  # waits for a running transaction, holds no other process up
            position = store.position()
        return position.log_end if position.log_file == log_file else None

    def _switch_to(self, snapshot: dict[str, Any], point: Position, prepared: _NewLog) -> None:
        """Name the snapshot in the header, with the new log completed by what was committed
        since ``prepared`` was copied (lock held)."""
        store = self._store
        if point.log_file != store.header.log["file"]:
            raise StoreError("another checkpoint came first")
        now = store.position()
        log = store.current_log()
        tail = log.read_range(prepared.copied_to, now.log_end)
        new = store.checkpointer.switch(
            header=store.header, keyring=store.keyring, snapshot=snapshot, log=log,
            tail=tail, new=(prepared.name, prepared.log), new_end=prepared.end)
        name = store.header.log["file"]
        shift = new.start - point.log_end
        if now.seq == point.seq:
            position = Position(now.seq, name, new.start, new.start, now.seq + 1)
        else:
            position = Position(now.seq, name, now.log_end + shift,
                                now.commit_start + shift, now.commit_seq)
        store.moved_to_log(new, position)  # the new log was synced with everything in it
