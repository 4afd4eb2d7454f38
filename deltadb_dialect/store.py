"""The store: the encrypted system of record behind one in-memory replica.

A ``Store`` is shared by every DB-API connection of a process to one store.
Transactions are serialized: a transaction holds the store's lock (a process
mutex and the storage's writer lock, see ``lock.py``) from its first statement
to its end, and catches up with other processes' commits when it starts. So each
transaction sees every commit acknowledged before it began, and concurrent
read-modify-write transactions cannot lose updates (the isolation level is
SERIALIZABLE, by serial execution).

Commit path: capture the transaction's row changes (SQLite's preupdate hook),
validate each row against its table's JSON Schema, seal each row as its own
entity, append one sealed record to the log and sync it (the commit point), then
COMMIT the replica.

The parts, each owning its state: ``storage.py`` (where the header, log,
snapshots and anchor live), ``lock.py``, ``anchor.py``, ``group_sync.py``
(deferred syncs), ``replay.py`` (the replica and its position in the log),
``checkpoint.py`` and ``background_checkpoint.py`` (a checkpoint made beside the commits:
its thread, packing, copying and switch).
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from deltadb_dialect import keys as keymod
from deltadb_dialect.anchor import Anchor
from deltadb_dialect.background_checkpoint import BackgroundCheckpoint
from deltadb_dialect.cache import EntityCache
from deltadb_dialect.checkpoint import Checkpointer, CheckpointPolicy
from deltadb_dialect.errors import CorruptStoreError, StoreError, TamperError, WrongKeyError
from deltadb_dialect.group_sync import DeferredCommits, GroupSync
from deltadb_dialect.keys import Keyring, MasterKeySource, MasterWrap
from deltadb_dialect.layout import Header, unb64
from deltadb_dialect.lock import StoreLock
from deltadb_dialect.records import RecordBuilder
from deltadb_dialect.replay import Replayer
from deltadb_dialect.replica import Capture, Replica
from deltadb_dialect.replica_file import (
    DEFAULT_CACHE_MB,
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
from deltadb_dialect.storage import Log, Storage, open_storage
from deltadb_dialect.wal_checkpoint import WalCheckpointer

logger = logging.getLogger("deltadb_dialect")

__all__ = ["ConstraintViolation", "DeferredCommits", "Store", "StoreOptions", "METRICS"]


class ConstraintViolation(StoreError):
    """A constraint SQLite checks only at COMMIT (deferred foreign keys) failed."""


@dataclass(frozen=True)
class StoreOptions:
    timeout: float = 30.0  # seconds to wait for the store's lock
    checkpoint_bytes: int = 64 * 1024 * 1024  # no checkpoint for a smaller log
    checkpoint_ratio: float = 1.0  # ... nor before the log is this fraction of the snapshot
    create: bool = True
    cache_size: int = 1024
    cache_ttl: float = 300.0
    replica_cache_mb: float = DEFAULT_CACHE_MB  # SQLite's page cache for the replica file
    pack_in_process: bool = True  # background checkpoints pack in a child process
    # The replica's WAL copied back by a thread of its own instead of by the commit that
    # filled it (false: SQLite's checkpoint inside the commit that passes 1,000 WAL pages).
    wal_thread: bool = True
    storage: str | None = None  # a database server's URL (postgresql://...); None: a directory


METRICS: dict[str, int] = {
    "commits": 0,
    "records_written": 0,
    "entities_written": 0,
    "catch_ups": 0,
}


def _cut_short(replica: Replica, path: Path) -> str | None:
    """Why the file cannot be whole: its size is not a number of pages (a truncated copy)."""
    # apsw types a value as any SQLite value (None included); page_size is an integer.
    page_size = int(replica.conn.execute("PRAGMA page_size").fetchall()[0][0])  # type: ignore[arg-type]
    if path.stat().st_size % page_size:
        return "its file was cut short"
    return None


class Store:
    """One open store: keys, log, snapshot and the replica."""

    def __init__(self, storage: Storage, options: StoreOptions) -> None:
        self.storage = storage
        self.location: Path = storage.location
        self.options = options
        self.key_fingerprint = ""
        self.refcount = 0
        self.closed = False
        self._lock: StoreLock | None = None
        self._header: Header | None = None
        self._store_id = b""
        self._keyring: Keyring | None = None
        self._anchor: Anchor | None = None
        self._replayer: Replayer | None = None
        self._log: Log | None = None
        self._log_name = ""  # the name of the log ``_log`` reads
        self._replica_files = ReplicaFiles(storage.location)
        self._replica_key = b""  # derived from the store key; never written anywhere
        self._replica_id: tuple[int, int] | None = None  # which replica file we have open
        self._schema_seen = -1  # the replica's schema version when this process last looked
        self._abandoned: list[Any] = []  # a parent's connections, inherited by a fork
        self._needs_reopen = False  # forked: open the replica file afresh
        self._needs_realign = False  # a commit failed after its record was written
        self._needs_rebuild = False
        self._rebuild_reason: str | None = None  # why, when not a page that failed
        self._wal: WalCheckpointer | None = None  # the replica's WAL, copied back in a thread
        self._tables_dirty = False
        self._sync = GroupSync(self._anchor_after_sync)
        self.checkpointer = Checkpointer(storage, CheckpointPolicy(
            min_bytes=options.checkpoint_bytes, ratio=options.checkpoint_ratio))
        self._background = BackgroundCheckpoint(self)
        self._functions: dict[tuple[str, int], tuple[Any, bool]] = {}
        self._functions_lock = threading.Lock()
        self._functions_pending = False
        # SQL text -> (cursor description,), shared by this process's connections;
        # cleared whenever the schema changes.
        self.statement_cache: dict[str, tuple[Any]] = {}
        self.cache = EntityCache(options.cache_size, options.cache_ttl)

    # --- what the rest of the driver sees ---------------------------------------------------

    @property
    def replica(self) -> Replica:
        return self._require_replayer().replica

    @property
    def seq(self) -> int:
        """The last sequence number this process has applied (its view of the store)."""
        return self._require_replayer().seq

    @property
    def durable_seq(self) -> int:
        """The highest sequence number known to be on stable storage."""
        return self._sync.durable_seq

    @property
    def lock(self) -> StoreLock:
        if self._lock is None:
            raise StoreError("the store is not open")
        return self._lock

    @property
    def header(self) -> Header:
        if self._header is None:
            raise StoreError("the store is not open")
        return self._header

    @property
    def keyring(self) -> Keyring:
        return self._require_keyring()

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], source: MasterKeySource,
             options: StoreOptions | None = None) -> Store:
        options = options or StoreOptions()
        store = cls(open_storage(path, timeout=options.timeout, storage=options.storage,
                                 create=options.create), options)
        try:
            store._open(source)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def inspect(cls, path: str | os.PathLike[str], source: MasterKeySource) -> Store:
        """The store's header and keys only: no replica, no lock (for checking its files one
        by one, as ``verify`` does, when a full open may fail). Close it after use."""
        store = cls(open_storage(path, timeout=0, create=False), StoreOptions(create=False))
        try:
            if not store.storage.exists():
                raise CorruptStoreError(f"{path} is not a DeltaDB store")
            store.unlock_keys(source)
        except BaseException:
            store.close()
            raise
        return store

    def _open(self, source: MasterKeySource) -> None:
        storage = self.storage
        if not storage.exists():
            if not self.options.create:
                raise CorruptStoreError(f"{self.location} is not a DeltaDB store")
            storage.create()
        storage.check_writable()
        self._lock = storage.writer_lock()
        self.key_fingerprint = source.fingerprint()
        self._lock.hold()
        try:
            if not storage.exists():
                self._initialize(source)
            self.unlock_keys(source)
            lost = storage.take_divergence()
            if lost is not None:
                self._rebuild(lost)
            else:
                self._open_replica()
            self._require_anchor().check(self.seq)
            self._drop_torn_tail(full=True)
            self._remove_orphans()
        finally:
            self._lock.unhold()

    def _drop_torn_tail(self, *, full: bool) -> None:
        """Cut off what a crashed writer left after the log's end (caller holds the lock,
        so nobody is writing). ``full``: look at every byte to the end of the file (at
        open: a power loss can leave a torn write whose first block is still zero);
        otherwise only where the next record would start (a killed process writes a
        prefix, so a torn write it left starts there)."""
        log = self._require_log()
        end = self._require_replayer().log_end
        if log.has_data_after(end) if full else log.has_data_at(end):
            log.truncate(end)

    def _remove_orphans(self) -> None:
        header = self.header
        live = {header.log["file"]} | ({header.snapshot["file"]} if header.snapshot else set())
        self.storage.remove_leftovers(live)
        self._replica_files.remove_others(keep=self._replica_files.current())

    def _initialize(self, source: MasterKeySource) -> None:
        store_id = secrets.token_bytes(16)
        kdf = None
        if source.passphrase is not None:
            kdf = dict(keymod.DEFAULT_KDF_PARAMS, salt=secrets.token_hex(16))
        master = keymod.master_key_for(source, kdf)
        store_key = secrets.token_bytes(keymod.KEY_BYTES)
        keyring = Keyring(store_id=store_id, store_key=store_key)
        log_name = self.storage.new_log_name()
        header = Header(
            store_id=store_id,
            store_key=MasterWrap(master, store_id).wrap_store_key(store_key),
            data_keys={1: keyring.wrap_data_key(1, secrets.token_bytes(keymod.KEY_BYTES))},
            active_kid=1,
            kdf=kdf,
            log={"file": log_name, "base_seq": 0},
        )
        self.storage.create_log(log_name, store_id=store_id, base_seq=0, keyring=keyring).close()
        self.storage.write_header(header, keyring.header_mac)

    def unlock_keys(self, source: MasterKeySource) -> None:
        """Unwrap the store's keys with the master key and load the header (no lock needed:
        the header is replaced atomically)."""
        body, mac = self.storage.read_header()
        store_id = bytes.fromhex(body["store_id"])
        master = keymod.master_key_for(source, body.get("kdf"))
        store_key = MasterWrap(master, store_id).unwrap_store_key(unb64(body["store_key"]))
        if store_key is None:
            raise WrongKeyError(
                f"the master key does not open the store at {self.location} "
                "(wrong DELTADB_MASTER_KEY, key file or passphrase)"
            )
        self._keyring = keyring = Keyring(store_id=store_id, store_key=store_key)
        self._load_header(body, mac)
        self._anchor = Anchor(self.storage, keyring, store_id)
        self._replica_key = keymod.subkey(store_key, "replica-file")

    def _load_header(self, body: dict[str, Any], mac: str) -> None:
        keyring = self._require_keyring()
        if not secrets.compare_digest(keyring.header_mac(Header.canonical(body)), mac):
            raise TamperError(f"the store header of {self.location} failed to authenticate")
        header = Header.from_body(body)
        if header.store_id != keyring.store_id:
            raise CorruptStoreError("the store header belongs to another store")
        self._store_id = header.store_id
        for kid, wrapped in header.data_keys.items():
            if kid not in keyring.data:
                keyring.add_wrapped_data_key(kid, wrapped)
        keyring.active_kid = header.active_kid
        self._header = header
        self.checkpointer.forget()
        self._background.forget_failures()  # the log may be another one now

    def _require_keyring(self) -> Keyring:
        if self._keyring is None:
            raise StoreError("the store is not open")
        return self._keyring

    def _require_replayer(self) -> Replayer:
        if self._replayer is None:
            raise StoreError("the store is not open")
        return self._replayer

    def _require_log(self) -> Log:
        if self._log is None:
            raise StoreError("the store is not open")
        return self._log

    def _require_anchor(self) -> Anchor:
        if self._anchor is None:
            raise StoreError("the store is not open")
        return self._anchor

    def acknowledged(self) -> int | None:
        """The last acknowledged sequence number per the commit anchor (None: no anchor)."""
        return self._require_anchor().acknowledged()

    # --- the records on the storage ---------------------------------------------------------

    def open_log(self) -> Log:
        """The header's current log, opened (the caller closes it)."""
        header = self.header
        return self.storage.open_log(header.log["file"], store_id=header.store_id,
                                     keyring=self._require_keyring())

    def open_snapshot(self) -> Any:
        """The header's current snapshot, verified against its digest, or None."""
        header = self.header
        if not header.snapshot:
            return None
        return self.storage.open_snapshot(header.snapshot, store_id=header.store_id)

    # --- the replica file ----------------------------------------------------------------

    def _open_replica(self) -> None:
        """Open the host's replica and bring it up to the log's end, or rebuild it when it
        is missing, damaged, another store's, another version's, or not a prefix of the
        log (caller holds the lock)."""
        files = self._replica_files
        name = files.current()
        if name is None:
            if files.named() is not None:
                self._rebuild("its file is missing")
            else:  # a new store, or one from before replica files: building it is expected
                self._rebuild("there is none yet", level=logging.INFO)
            return
        replica = None
        try:
            replica = Replica(open_connection(files.path(name), self._replica_key,
                                              cache_mb=self.options.replica_cache_mb))
            reason = self._unfit(read_state(replica.conn)) or _cut_short(replica, files.path(name))
        except UNUSABLE as exc:
            reason = f"its file is damaged or another store's ({exc})"
        if reason is not None:
            if replica is not None:
                replica.close()
            self._rebuild(reason)
            return
        assert replica is not None
        self._use_replica(replica)
        self._watch_wal(files.path(name))
        self._replica_id = files.pointer_id()
        try:
            self._align(verify=True)
        except UNUSABLE as exc:
            self._rebuild(f"a page failed to authenticate ({exc})")

    def _unfit(self, state: State | None) -> str | None:
        """Why a replica with this state cannot be used (None: it can)."""
        if state is None:
            return "it holds no state"
        if state.format != FORMAT:
            return f"it was written by another version (format {state.format})"
        if state.store_id != self._store_id:
            return "it belongs to another store"
        return None

    def _use_replica(self, replica: Replica) -> None:
        replayer = self._replayer
        if replayer is None:
            self._replayer = Replayer(keyring=self._require_keyring(), store_id=self._store_id,
                                      cache=self.cache, statement_cache=self.statement_cache,
                                      replica=replica)
        else:
            old, replayer.replica = replayer.replica, replica
            if self._needs_reopen:
                self._abandoned.append(old)  # a parent's connection: never touched here
            else:
                old.close()
        self._needs_reopen = False
        self._install_functions()

    def _rebuild(self, reason: str, *, level: int = logging.WARNING) -> None:
        """Build a new replica file from the snapshot and the log, then point at it (caller
        holds the lock). Processes that have the old one open move at their next catch-up."""
        logger.log(level, "rebuilding the replica of the store at %s: %s", self.location, reason)
        files = self._replica_files
        name = files.new_name()
        path = files.path(name)
        conn = open_connection(path, self._replica_key, cache_mb=self.options.replica_cache_mb,
                               building=True)
        replica = Replica(conn)
        try:
            create_state(conn, store_id=self._store_id, position=Position(0, "", 0, 0, 0))
            if self._replayer is None or self._needs_reopen:
                self._use_replica(Replica())  # a placeholder, replaced by the rebuild
            self._reopen_log()
            replayer = self._require_replayer()
            replayer.rebuild(replica, self.open_snapshot(), self._require_log(), self._log_name,
                             self.acknowledged, base_seq=self.header.log.get("base_seq", 0))
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

    def _watch_wal(self, path: Path) -> None:
        """Checkpoint the WAL of the replica now in use from a thread of its own."""
        if self._wal is not None:
            self._wal.stop()
            self._wal = None
        if not self.options.wal_thread:
            return  # SQLite's own checkpoint after the commit that fills its WAL page budget
        self._wal = WalCheckpointer(path, self._replica_key)
        self._wal.attach(self.replica.conn)

    def _reopen_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        self._log = self.open_log()
        self._log_name = self.header.log["file"]

    def _align(self, *, verify: bool = False) -> None:
        """Bring this process's view to the replica's state (another process may have
        committed, checkpointed or changed the schema), then replay whatever the log holds
        past it (a writer killed between its log sync and its replica commit). ``verify``:
        check that the replica's last commit is in the log as it says (at open)."""
        replayer = self._require_replayer()
        state = read_state(replayer.replica.conn)
        reason = self._unfit(state)
        if reason is not None:
            self._rebuild(reason)
            return
        assert state is not None
        position = state.position
        if position != replayer.position():
            self.cache.clear()  # rows may have changed under any cached document
        log = self._log
        if (position.log_file != self.header.log["file"]
                or (log is not None and self.storage.log_replaced(log))):
            self._reload_header()
        header = self.header
        if position.log_file != header.log["file"]:
            if not (header.snapshot and header.snapshot["seq"] == position.seq):
                self._rebuild("it is not at a point of the store's current log")
                return
            # a checkpoint wrote its header, and its writer died before moving the replica
            position = Position(position.seq, header.log["file"], 0, 0, position.seq + 1)
            verify = False
        if self._log is None or self._log_name != header.log["file"]:
            self._reopen_log()
        log = self._require_log()
        if position.log_end == 0:  # (the case just above) the new log's start
            position = Position(position.seq, position.log_file, log.start, log.start,
                                position.seq + 1)
        if verify and not self._in_log(position, log):
            self._rebuild("it is ahead of the store's log, or not from this log")
            return
        replayer.move_to(position)
        schema = replayer.replica.schema_version()
        if schema != self._schema_seen:
            replayer.adopt_catalog(state.catalog)
            self._schema_seen = schema
        if self.storage.log_grew_past(log, replayer.log_end):
            METRICS["catch_ups"] += 1
            self._replay_log()
            # We hold the lock, so nobody is writing: anything left where the next record
            # would start is a crashed writer's torn record, never acknowledged.
            self._drop_torn_tail(full=False)
            self._schema_seen = replayer.replica.schema_version()

    def _in_log(self, position: Position, log: Log) -> bool:
        """Whether the log holds the replica's last commit where its state says."""
        if position.commit_start == position.log_end:
            return (position.log_end == log.start
                    and position.seq == self.header.log.get("base_seq", 0))
        try:
            for record in log.records(position.commit_start, position.commit_seq):
                if record.end >= position.log_end:
                    return record.end == position.log_end and record.seq == position.seq
        except StoreError:
            return False
        return False

    # --- transactions --------------------------------------------------------------------

    def acquire(self, timeout: float | None = None, *, write: bool = True) -> None:
        """Take the store for one transaction and catch up with other processes.

        If this process still holds the writer lock from its previous transaction, no
        other process can have committed since: there is nothing to catch up with.
        ``write=False``: the transaction begins with a read (see ``lock_for_write``).
        """
        if self._sync.failure is not None:
            raise StoreError(self._sync.failure)
        lock = self.lock
        fresh = lock.acquire(self.options.timeout if timeout is None else timeout, write=write)
        lost = self.storage.take_divergence() if fresh else None
        if lost is not None:
            self._needs_rebuild, self._rebuild_reason = True, lost
        try:
            if fresh or self._needs_rebuild or self._needs_realign or self._needs_reopen:
                self._catch_up()
        except BaseException:
            lock.abort()
            raise
        lock.began(fresh=fresh)

    def lock_for_write(self) -> bool:
        """A transaction begun with ``write=False`` writes: take the storage's write lock.
        True when other hosts committed since it began: the store caught up with them, and
        the caller checks that what the transaction read is unchanged."""
        if not self.lock.lock_for_write():
            return False
        lost = self.storage.take_divergence()
        if lost is not None:
            self._needs_rebuild, self._rebuild_reason = True, lost
        self._catch_up()
        return True

    def release(self) -> None:
        """End a transaction; keep the writer lock unless another process waits for it."""
        self.lock.release()

    def would_wait(self) -> bool:
        """Whether beginning a transaction now might block: another thread of this process
        has the store, or this process has not kept the store's lock since its last
        transaction (so another process may hold it, or commits may be waiting to be replayed).
        A hint for callers choosing where to run short work; it can be stale at once."""
        return self._lock is None or self._lock.would_wait()

    def held_by_this_thread(self) -> bool:
        """True while another connection of this thread holds the store (see dbapi guests)."""
        return self._lock is not None and self._lock.held_by_this_thread()

    def _after_fork_in_child(self) -> None:
        """A forked child must not use its parent's SQLite connection: it opens its own."""
        if self._lock is not None:
            self._lock.after_fork_in_child()
        if self._wal is not None:
            self._wal.forget_after_fork()
            self._wal = None  # the parent's connection is not ours: the reopen watches anew
        self._needs_reopen = True

    def _catch_up(self) -> None:
        try:
            if self._needs_rebuild:
                self._reload_header()
                reason, self._rebuild_reason = self._rebuild_reason, None
                self._rebuild(reason or "a page of it failed to authenticate")
            elif self._needs_reopen or self._replica_files.pointer_id() != self._replica_id:
                self._open_replica()  # forked, or another process rebuilt it
            else:
                self._align()
        except UNUSABLE as exc:
            self._reload_header()
            self._rebuild(f"it could not be read ({exc})")
        self._needs_realign = False

    def _replay_log(self) -> None:
        try:
            self._require_replayer().catch_up(self._require_log(), self.acknowledged)
        except BaseException:
            self._needs_realign = True  # the replica rolled back: start from its state again
            raise

    def _reload_header(self) -> None:
        body, mac = self.storage.read_header()
        self._load_header(body, mac)
        if self.header.snapshot:
            # a checkpoint (ours or another process's, after catching up) wrote every commit
            # up to its snapshot durably, whatever log held them before
            self._sync.covered(self.header.snapshot["seq"])

    def begin(self, *, foreign_keys: bool) -> tuple[Capture, int]:
        """Open the replica transaction (caller holds the store); returns its capture."""
        replica = self.replica
        conn = replica.conn
        if self._functions_pending:
            self._install_functions()
        if not foreign_keys:
            conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("BEGIN")
        return replica.start_capture(), replica.schema_version()

    def commit(self, capture: Capture, schema_version: int, *, foreign_keys: bool) -> None:
        """Make the transaction durable, then visible. Raises before anything is written."""
        conn = self.replica.conn
        self._check_deferred_constraints(foreign_keys)
        # The commit's own objects (one document, change and ciphertext per row) all live
        # until it ends and hold no cycles: cyclic GC passes over them would only scan them
        # and promote the application's young objects to older generations (costlier
        # passes later). Automatic collection waits for the end of the commit.
        collecting = gc.isenabled()
        gc.disable()
        wrote = False
        try:
            builder = self._seal_changes(capture, schema_version)
            if builder.entities > 0:
                self._write(builder)
                wrote = True
            del builder  # freed here, before collection resumes
            conn.execute("COMMIT")
        except BaseException:
            if wrote:  # in the log, not in the replica: the next transaction replays it
                self._needs_realign = True
            raise
        finally:
            if collecting:
                gc.enable()
        self._schema_seen = self.replica.schema_version()
        if not foreign_keys:
            conn.execute("PRAGMA foreign_keys=ON")
        if wrote:
            self._background.after_commit(self._require_log(), self._require_replayer().log_end)

    def rollback(self, capture: Capture | None, *, foreign_keys: bool) -> None:
        replica = self.replica
        conn = replica.conn
        replica.stop_capture()
        if not conn.get_autocommit():
            conn.execute("ROLLBACK")
        if not foreign_keys:
            conn.execute("PRAGMA foreign_keys=ON")
        if self._tables_dirty:  # a failed commit had already read the new shapes
            replica.refresh_tables()
            self._require_replayer().retag()
            self._tables_dirty = False
        self._schema_seen = replica.schema_version()

    def _check_deferred_constraints(self, foreign_keys: bool) -> None:
        conn = self.replica.conn
        if not foreign_keys:
            if conn.execute("PRAGMA foreign_key_check").fetchall():
                raise ConstraintViolation("FOREIGN KEY constraint failed")
        elif conn.status(apsw.SQLITE_DBSTATUS_DEFERRED_FKS)[0]:
            raise ConstraintViolation("FOREIGN KEY constraint failed")

    def _seal_changes(self, capture: Capture, schema_version: int) -> RecordBuilder:
        """The transaction's changes, validated and sealed into records (nothing written
        yet): the catalog and the tables exported whole first (created or altered in the
        transaction, or not followable row by row), then the changed rows."""
        replayer = self._require_replayer()
        replica = replayer.replica
        replica.stop_capture()
        keyring = self._require_keyring()
        schema_changed = replica.schema_version() != schema_version
        changed: set[str] = set()
        if schema_changed:
            self._tables_dirty = True
            changed = replica.refresh_tables()
        whole = changed | capture.whole | capture.dropped
        builder = RecordBuilder(sealer=keyring.active, store_id=self._store_id,
                                naming_key=keyring.naming_key, seq=replayer.seq + 1,
                                key_hashers=replayer.key_hashers, cache=self.cache)
        if schema_changed:
            replayer.retag()
        if schema_changed or capture.pragmas_changed:
            catalog = replica.catalog()
            builder.catalog(catalog)
            replayer.local_catalog(catalog)  # into the replica's state with the position
        for name in sorted(whole):
            builder.reset(name)
            table = replica.tables.get(name)
            if table is not None:
                for change in replica.export_table(table):
                    document = change.document
                    assert document is not None  # an exported row always has one
                    table.validator(document)
                    builder.upsert(table, change.key, document)
        builder.captured(capture, whole)
        return builder

    def _write(self, builder: RecordBuilder) -> None:
        """Append the sealed records and sync (the commit point, unless syncing is
        deferred: then ``make_durable`` is)."""
        log = self._require_log()
        replayer = self._require_replayer()
        records = builder.finish()
        block = self._sync.current_block()
        start, first_seq = replayer.log_end, replayer.seq + 1
        end = log.append(records, start, sync=block is None)
        seq = builder.seq
        replayer.committed(start=start, first_seq=first_seq, seq=seq, end=end)
        replayer.save_position()  # in the replica transaction, committed next
        self._sync.written(log, seq, synced=block is None)
        if block is None:
            self._require_anchor().write(seq)
        else:
            block.seq = seq
        self._tables_dirty = False
        METRICS["commits"] += 1
        METRICS["records_written"] += len(records)
        METRICS["entities_written"] += builder.entities

    def register_function(self, name: str, narg: int, func: Any, *, deterministic: bool) -> None:
        """An SQL function for the replica, installed at the next transaction's start.

        The replica is shared, so it changes only between transactions; the
        registry also gives a rebuilt replica its functions again.
        """
        with self._functions_lock:
            self._functions[(name, narg)] = (func, deterministic)
            self._functions_pending = True

    def _install_functions(self) -> None:
        with self._functions_lock:
            conn = self.replica.conn
            for (name, narg), (func, deterministic) in self._functions.items():
                conn.create_scalar_function(name, func, narg, deterministic=deterministic)
            self._functions_pending = False

    def read_document(self, table: str, key: tuple) -> dict[str, Any] | None:
        """One row as its entity document, through the cache (caller holds the store).

        ``key`` holds the primary key values (or the rowid) in key-column order.
        """
        replayer = self._require_replayer()
        info = replayer.replica.tables.get(table)
        if info is None:
            return None
        cache_key = (table, replayer.key_tag(table, key))
        document = self.cache.get(cache_key)
        if document is None:
            rows = replayer.replica.conn.execute(info.select_sql, key).fetchall()
            if not rows:
                return None
            document = info.document(rows[0])
            self.cache.put(cache_key, document)
        return dict(document)

    def mark_for_rebuild(self) -> None:
        self._needs_rebuild = True

    # --- group commit --------------------------------------------------------------------

    @contextmanager
    def deferring_sync(self) -> Iterator[DeferredCommits]:
        """Commits made by this thread in the block return once their record is written,
        durable only after ``make_durable(block.seq)`` (see ``group_sync.py``)."""
        with self._sync.deferring() as block:
            yield block

    def make_durable(self, seq: int) -> None:
        """Sync the log up to commit ``seq``; from any thread, while other transactions run."""
        self._sync.make_durable(seq)

    def _anchor_after_sync(self, seq: int) -> None:
        """Move the anchor to a commit just synced, when that is still the store's newest one
        and this process holds the store (else a newer commit's own anchor follows)."""
        lock = self._lock
        if lock is None or not lock.mutex.acquire(blocking=False):
            return  # a transaction runs: its commit (or its sync) writes a newer anchor
        try:
            if lock.flock_held and self.seq == seq:
                self._require_anchor().write(seq)
        finally:
            lock.mutex.release()

    # --- checkpoint ------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Pack every live entity into a new snapshot and start an empty log (lock held)."""
        replayer = self._require_replayer()
        self._log = log = self.checkpointer.write(
            header=self.header, keyring=self._require_keyring(), replayer=replayer,
            log=self._require_log())
        self._log_name = self.header.log["file"]
        self._sync.covered(replayer.seq)
        self._save_moved_position(Position(replayer.seq, self._log_name, log.start, log.start,
                                           replayer.seq + 1))

    def wait_for_checkpoint(self, timeout: float = 120.0) -> None:
        """Let a background checkpoint finish (before closing: its switch needs the lock)."""
        self._background.wait(timeout)

    # what a background checkpoint (``background_checkpoint.py``) reads and moves

    @property
    def replica_key(self) -> bytes:
        return self._replica_key

    def position(self) -> Position:
        """This process's position in the log (its last applied commit)."""
        return self._require_replayer().position()

    def current_log(self) -> Log:
        return self._require_log()

    def replica_path(self) -> Path:
        """The current replica file (StoreError if there is none)."""
        name = self._replica_files.current()
        if name is None:
            raise StoreError("the replica file is gone")
        return self._replica_files.path(name)

    def moved_to_log(self, log: Log, position: Position) -> None:
        """A checkpoint switched to ``log``, synced with every commit up to ``position``
        (lock held): commits append there from now on."""
        self._log = log
        self._log_name = self.header.log["file"]
        self._sync.covered(position.seq)
        self._save_moved_position(position)

    def _save_moved_position(self, position: Position) -> None:
        replayer = self._require_replayer()
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

    # --- keys -------------------------------------------------------------------------------

    def rotate_master_key(self, new_source: MasterKeySource) -> None:
        """Re-wrap the store key under a new master key (caller holds the store).

        Rows and data keys are untouched; processes already running keep working.
        """
        header = self.header
        keyring = self._require_keyring()
        kdf = None
        if new_source.passphrase is not None:
            kdf = dict(keymod.DEFAULT_KDF_PARAMS, salt=secrets.token_hex(16))
        master = keymod.master_key_for(new_source, kdf)
        header.kdf = kdf
        header.store_key = MasterWrap(master, header.store_id).wrap_store_key(keyring.store_key)
        self.storage.write_header(header, keyring.header_mac)
        self.key_fingerprint = new_source.fingerprint()

    def close(self) -> None:
        self.closed = True
        pending = self._sync.pending()
        if pending is not None and self._sync.failure is None:
            try:
                self.make_durable(pending)
            except StoreError:
                pass  # reported to the caller that waited for it, if any
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._wal is not None:
            self._wal.stop()
            self._wal = None
        if self._replayer is not None and not self._needs_reopen:
            self._replayer.replica.close()
        self.storage.close()  # gives the writer lock up and closes its file
