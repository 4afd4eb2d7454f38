"""The host's replica file, kept in step with the log: opened, aligned, rebuilt.

Each process opens the replica file the host's pointer names (``replica_file.py``) and
keeps its view of it (the ``Replayer``) at the replica's state: another process may have
committed, checkpointed, changed the schema or rebuilt the file since this one last
looked. Whatever the log holds past the replica's state (a writer killed between its log
sync and its replica commit) is replayed. A replica that is missing, damaged, another
store's or another version's, or ahead of the log is rebuilt from the snapshot and the
log into a new file, which is then published: processes that have the old file open move
to the new one at their next catch-up.

``ReplicaKeeper`` owns the replayer, which file is open, the thread copying its WAL back
and what the next catch-up must do; the store it serves gives it the header, the log and
the keys. It opens, aligns and rebuilds with the store's lock held (by the caller).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltadb_dialect.errors import StoreError
from deltadb_dialect.replay import Replayer
from deltadb_dialect.replica import Replica
from deltadb_dialect.replica_file import (
    FORMAT,
    UNUSABLE,
    Position,
    ReplicaFiles,
    State,
    create_state,
    finish_build,
    open_connection,
    read_state,
)
from deltadb_dialect.storage import Log
from deltadb_dialect.wal_checkpoint import WalCheckpointer

if TYPE_CHECKING:
    from deltadb_dialect.store import Store

logger = logging.getLogger("deltadb_dialect")

METRICS: dict[str, int] = {"catch_ups": 0}


def _cut_short(replica: Replica, path: Path) -> str | None:
    """Why the file cannot be whole: its size is not a number of pages (a truncated copy)."""
    # apsw types a value as any SQLite value (None included); page_size is an integer.
    page_size = int(replica.conn.execute("PRAGMA page_size").fetchall()[0][0])  # type: ignore[arg-type]
    if path.stat().st_size % page_size:
        return "its file was cut short"
    return None


class ReplicaKeeper:
    """Opens the host's replica file, keeps it aligned with the log, and rebuilds it when it
    is missing, damaged or ahead of the log."""

    def __init__(self, store: Store, *, install_functions: Callable[[], None]) -> None:
        self._store = store
        self._install_functions = install_functions  # the store's SQL functions, on the replica
        self._files = ReplicaFiles(store.location)
        self._replayer: Replayer | None = None
        self._replica_id: tuple[int, int] | None = None  # which replica file we have open
        self._schema_seen = -1  # the replica's schema version when this process last looked
        self._abandoned: list[Any] = []  # a parent's connections, inherited by a fork
        self._needs_reopen = False  # forked: open the replica file afresh
        self._needs_realign = False  # a commit failed after its record was written
        self._needs_rebuild = False
        self._rebuild_reason: str | None = None  # why, when not a page that failed
        self._wal: WalCheckpointer | None = None  # the replica's WAL, copied back in a thread
        self._read_position: Position | None = None  # the snapshot a lockless reader reads

    # --- what the store sees and tells ---------------------------------------------------

    @property
    def replayer(self) -> Replayer:
        """The replica in use and this process's position in the log."""
        if self._replayer is None:
            raise StoreError("the store is not open")
        return self._replayer

    def path(self) -> Path:
        """The current replica file (StoreError if there is none)."""
        name = self._files.current()
        if name is None:
            raise StoreError("the replica file is gone")
        return self._files.path(name)

    def remove_other_files(self) -> None:
        """Remove every replica file but the current one (leftovers of rebuilds)."""
        self._files.remove_others(keep=self._files.current())

    def needs_catch_up(self) -> bool:
        """Whether the next transaction must catch up even if no other process committed."""
        return self._needs_rebuild or self._needs_realign or self._needs_reopen

    # --- reading without the writer lock ---------------------------------------------------

    def begin_reading(self) -> bool:
        """Begin a snapshot of the replica for a transaction that reads without the flock,
        and bring this process's view to it (other processes' commits, a schema change).
        False when the replica needs more than that first (a rebuild, a reopen, a replay,
        another log): the caller takes the flock and catches up instead. Commits in the log
        but not in the replica are a crashed writer's, never acknowledged: the next writer
        replays them."""
        if self.needs_catch_up() or self._files.pointer_id() != self._replica_id:
            return False
        store = self._store
        replayer = self.replayer
        conn = replayer.replica.conn
        conn.execute("BEGIN")  # deferred: the snapshot is taken by the read just below
        try:
            state = read_state(conn)
        except UNUSABLE:
            conn.execute("ROLLBACK")
            return False
        if (self._unfit(state) is not None or state is None
                or state.position.log_file != store.header.log["file"]):
            conn.execute("ROLLBACK")
            return False
        position = state.position
        if position != replayer.position():
            store.cache.clear()  # rows may have changed under any cached document
            replayer.move_to(position)
        schema = replayer.replica.schema_version()
        if schema != self._schema_seen:
            replayer.adopt_catalog(state.catalog)
            self._schema_seen = schema
        self._read_position = position
        return True

    def end_reading(self) -> None:
        """End the snapshot ``begin_reading`` began (if it is still open)."""
        if self._replayer is None or self._needs_reopen:
            return
        conn = self._replayer.replica.conn
        if not conn.get_autocommit():
            conn.execute("ROLLBACK")

    def moved_since_reading(self) -> bool:
        """Whether the replica moved past the snapshot the transaction read."""
        return self.replayer.position() != self._read_position

    def mark_for_realign(self) -> None:
        """The replica may not be where this process's view says (a commit failed after its
        record was written, or a move to another log did): the next catch-up aligns it."""
        self._needs_realign = True

    def mark_for_rebuild(self, reason: str | None = None) -> None:
        """The next catch-up rebuilds the replica (``reason``: why, when not a page of it
        that failed to authenticate)."""
        self._needs_rebuild = True
        if reason is not None:
            self._rebuild_reason = reason

    def saw_schema(self, version: int) -> None:
        """This process's view of the tables is that of the replica's schema ``version``."""
        self._schema_seen = version

    def move_to(self, position: Position) -> None:
        """Save a new position in the replica (a checkpoint moved to another log)."""
        replayer = self.replayer
        replayer.move_to(position)
        conn = replayer.replica.conn
        conn.execute("BEGIN")
        try:
            replayer.save_position()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._needs_realign = True  # the replica still names the old log: it follows
            raise

    def after_fork_in_child(self) -> None:
        """A forked child must not use its parent's SQLite connection: it opens its own."""
        if self._wal is not None:
            self._wal.forget_after_fork()
            self._wal = None  # the parent's connection is not ours: the reopen watches anew
        self._needs_reopen = True

    def close(self) -> None:
        if self._wal is not None:
            self._wal.stop()
            self._wal = None
        if self._replayer is not None and not self._needs_reopen:
            self._replayer.replica.close()

    # --- opening, catching up, rebuilding -------------------------------------------------

    def open(self) -> None:
        """Open the host's replica and bring it up to the log's end, or rebuild it when it
        is missing, damaged, another store's, another version's, or not a prefix of the
        log."""
        files = self._files
        name = files.current()
        if name is None:
            if files.named() is not None:
                self.rebuild("its file is missing")
            else:  # a new store, or one from before replica files: building it is expected
                self.rebuild("there is none yet", level=logging.INFO)
            return
        replica = None
        try:
            replica = Replica(open_connection(files.path(name), self._store.replica_key,
                                              cache_mb=self._store.options.replica_cache_mb))
            reason = self._unfit(read_state(replica.conn)) or _cut_short(replica, files.path(name))
        except UNUSABLE as exc:
            reason = f"its file is damaged or another store's ({exc})"
        if reason is not None:
            if replica is not None:
                replica.close()
            self.rebuild(reason)
            return
        assert replica is not None
        self._use_replica(replica)
        self._watch_wal(files.path(name))
        self._replica_id = files.pointer_id()
        try:
            self._align(verify=True)
        except UNUSABLE as exc:
            self.rebuild(f"a page failed to authenticate ({exc})")

    def catch_up(self) -> None:
        """Bring the replica and this process's view up to the log's end, whatever happened
        since this process last looked (other commits, a rebuild, a fork, a failure)."""
        store = self._store
        try:
            if self._needs_rebuild:
                store.reload_header()
                reason, self._rebuild_reason = self._rebuild_reason, None
                self.rebuild(reason or "a page of it failed to authenticate")
            elif self._needs_reopen or self._files.pointer_id() != self._replica_id:
                self.open()  # forked, or another process rebuilt it
            else:
                self._align()
        except UNUSABLE as exc:
            store.reload_header()
            self.rebuild(f"it could not be read ({exc})")
        self._needs_realign = False

    def rebuild(self, reason: str, *, level: int = logging.WARNING) -> None:
        """Build a new replica file from the snapshot and the log, then point at it.
        Processes that have the old one open move at their next catch-up."""
        store = self._store
        logger.log(level, "rebuilding the replica of the store at %s: %s", store.location, reason)
        files = self._files
        name = files.new_name()
        path = files.path(name)
        conn = open_connection(path, store.replica_key, cache_mb=store.options.replica_cache_mb,
                               building=True)
        replica = Replica(conn)
        try:
            create_state(conn, store_id=store.header.store_id, position=Position(0, "", 0, 0, 0))
            if self._replayer is None or self._needs_reopen:
                self._use_replica(Replica())  # a placeholder, replaced by the rebuild
            log = store.reopen_log()
            self.replayer.rebuild(replica, store.open_snapshot(), log, store.header.log["file"],
                                  store.acknowledged, base_seq=store.header.log.get("base_seq", 0))
            finish_build(conn, path)
        except BaseException:
            replica.close()
            for leftover in files.directory.glob(name + "*"):
                leftover.unlink(missing_ok=True)
            raise
        files.publish(name)
        self._watch_wal(path)
        self._replica_id = files.pointer_id()
        self._schema_seen = replica.schema_version()
        self._needs_rebuild = self._needs_reopen = False
        self._install_functions()

    def _unfit(self, state: State | None) -> str | None:
        """Why a replica with this state cannot be used (None: it can)."""
        if state is None:
            return "it holds no state"
        if state.format != FORMAT:
            return f"it was written by another version (format {state.format})"
        if state.store_id != self._store.header.store_id:
            return "it belongs to another store"
        return None

    def _use_replica(self, replica: Replica) -> None:
        replayer = self._replayer
        if replayer is None:
            store = self._store
            self._replayer = Replayer(keyring=store.keyring, store_id=store.header.store_id,
                                      cache=store.cache, statement_cache=store.statement_cache,
                                      replica=replica)
        else:
            old, replayer.replica = replayer.replica, replica
            if self._needs_reopen:
                self._abandoned.append(old)  # a parent's connection: never touched here
            else:
                old.close()
        self._needs_reopen = False
        self._install_functions()

    def _watch_wal(self, path: Path) -> None:
        """Checkpoint the WAL of the replica now in use from a thread of its own."""
        if self._wal is not None:
            self._wal.stop()
            self._wal = None
        if not self._store.options.wal_thread:
            return  # SQLite's own checkpoint after the commit that fills its WAL page budget
        self._wal = WalCheckpointer(path, self._store.replica_key)
        self._wal.attach(self.replayer.replica.conn)

    def _align(self, *, verify: bool = False) -> None:
        """Bring this process's view to the replica's state (another process may have
        committed, checkpointed or changed the schema), then replay whatever the log holds
        past it (a writer killed between its log sync and its replica commit). ``verify``:
        check that the replica's last commit is in the log as it says (at open)."""
        store = self._store
        replayer = self.replayer
        state = read_state(replayer.replica.conn)
        reason = self._unfit(state)
        if reason is not None:
            self.rebuild(reason)
            return
        assert state is not None
        position = state.position
        if position != replayer.position():
            store.cache.clear()  # rows may have changed under any cached document
        if position.log_file != store.header.log["file"] or store.log_replaced():
            store.reload_header()
        header = store.header
        if position.log_file != header.log["file"]:
            if not (header.snapshot and header.snapshot["seq"] == position.seq):
                self.rebuild("it is not at a point of the store's current log")
                return
            # a checkpoint wrote its header, and its writer died before moving the replica
            position = Position(position.seq, header.log["file"], 0, 0, position.seq + 1)
            verify = False
        log = store.follow_header_log()
        if position.log_end == 0:  # (the case just above) the new log's start
            position = Position(position.seq, position.log_file, log.start, log.start,
                                position.seq + 1)
        if verify and not self._in_log(position, log):
            self.rebuild("it is ahead of the store's log, or not from this log")
            return
        replayer.move_to(position)
        schema = replayer.replica.schema_version()
        if schema != self._schema_seen:
            replayer.adopt_catalog(state.catalog)
            self._schema_seen = schema
        if store.storage.log_grew_past(log, replayer.log_end):
            METRICS["catch_ups"] += 1
            self._replay_log(log)
            # We hold the lock, so nobody is writing: anything left where the next record
            # would start is a crashed writer's torn record, never acknowledged.
            store.drop_torn_tail(full=False)
            self._schema_seen = replayer.replica.schema_version()

    def _in_log(self, position: Position, log: Log) -> bool:
        """Whether the log holds the replica's last commit where its state says."""
        if position.commit_start == position.log_end:
            return (position.log_end == log.start
                    and position.seq == self._store.header.log.get("base_seq", 0))
        try:
            for record in log.records(position.commit_start, position.commit_seq):
                if record.end >= position.log_end:
                    return record.end == position.log_end and record.seq == position.seq
        except StoreError:
            return False
        return False

    def _replay_log(self, log: Log) -> None:
        try:
            self.replayer.catch_up(log, self._store.acknowledged)
        except BaseException:
            self._needs_realign = True  # the replica rolled back: start from its state again
            raise
