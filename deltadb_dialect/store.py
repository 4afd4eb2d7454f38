"""The store: the encrypted system of record behind one replica (a SQLite file on the host).

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
``replica_keeper.py`` (the host's replica file opened, kept aligned with the log, and
rebuilt when missing, damaged or ahead of it), ``checkpoint.py`` and
``background_checkpoint.py`` (a checkpoint made beside the commits: its thread, packing,
copying and switch).
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
from deltadb_dialect.replica_file import DEFAULT_CACHE_MB, Position
from deltadb_dialect.replica_keeper import ReplicaKeeper
from deltadb_dialect.storage import Log, Storage, open_storage

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

logger = logging.getLogger("deltadb_dialect")

METRICS: dict[str, int] = {
    "commits": 0,
    "records_written": 0,
    "entities_written": 0,
    "commits_sealed_ahead": 0,
}

# A write transaction that has changed at least this many rows since its last seal has them
# sealed at the end of the statement (``Store.seal_ahead``); smaller ones seal at COMMIT.
SEAL_AHEAD_ROWS = 1024


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
        self._log: Log | None = None
        self._log_name = ""  # the name of the log ``_log`` reads
        self._replica_key = b""  # derived from the store key; never written anywhere
        self._keeper = ReplicaKeeper(self, install_functions=self._install_functions)
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
        # The running transaction's reads before its first write, where the storage checks
        # them again when it takes the write lock (shared by hosts): the holder's and those
        # its thread makes through other connections meanwhile. None otherwise.
        self.reads_before_write: list[tuple[str, Any, list[Any]]] | None = None

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
                self._keeper.rebuild(lost)
            else:
                self._keeper.open()
            self._require_anchor().check(self.seq)
            self.drop_torn_tail(full=True)
            self._remove_orphans()
        finally:
            self._lock.unhold()

    def drop_torn_tail(self, *, full: bool) -> None:
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
        self._keeper.remove_other_files()

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
        return self._keeper.replayer

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

    # --- the log this process reads (which the replica keeper follows) ---------------------

    def reopen_log(self) -> Log:
        """Close the log this process reads and open the header's current one."""
        if self._log is not None:
            self._log.close()
            self._log = None
        self._log = log = self.open_log()
        self._log_name = self.header.log["file"]
        return log

    def follow_header_log(self) -> Log:
        """The header's current log, opened afresh unless it is the one this process reads."""
        if self._log is None or self._log_name != self.header.log["file"]:
            return self.reopen_log()
        return self._log

    def log_replaced(self) -> bool:
        """Whether a checkpoint (of any process) replaced the log this process reads."""
        return self._log is not None and self.storage.log_replaced(self._log)

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
        try:
            if lock.reads_unlocked and not self._keeper.begin_reading():
                # the replica must be rebuilt, reopened or replayed first: under the flock
                lock.lock_for_write()
                fresh = True
            lost = self.storage.take_divergence() if fresh else None
            if lost is not None:
                self._keeper.mark_for_rebuild(lost)
            if fresh or self._keeper.needs_catch_up():
                self._keeper.catch_up()
        except BaseException:
            self._keeper.end_reading()
            lock.abort()
            raise
        lock.began(fresh=fresh)

    def lock_for_write(self) -> bool:
        """A transaction begun with ``write=False`` writes: take the storage's write lock.
        True when others committed since it began reading: the store caught up with them,
        and the caller checks that what the transaction read is unchanged."""
        lock = self.lock
        reading = lock.reads_unlocked
        if reading:
            self._keeper.end_reading()  # SQLite could not write from a snapshot past its end
        if not lock.lock_for_write():
            return False
        lost = self.storage.take_divergence()
        if lost is not None:
            self._keeper.mark_for_rebuild(lost)
        self._keeper.catch_up()
        return not reading or self._keeper.moved_since_reading()

    def release(self) -> None:
        """End a transaction; keep the writer lock unless another process waits for it."""
        if self.lock.reads_unlocked:
            self._keeper.end_reading()
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
        self._keeper.after_fork_in_child()

    def reload_header(self) -> None:
        """Read the header again: another process may have checkpointed or added a data key."""
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
                self._keeper.mark_for_realign()
            raise
        finally:
            if collecting:
                gc.enable()
        self._keeper.saw_schema(self.replica.schema_version())
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
        self._keeper.saw_schema(replica.schema_version())

    def _check_deferred_constraints(self, foreign_keys: bool) -> None:
        conn = self.replica.conn
        if not foreign_keys:
            if conn.execute("PRAGMA foreign_key_check").fetchall():
                raise ConstraintViolation("FOREIGN KEY constraint failed")
        elif conn.status(apsw.SQLITE_DBSTATUS_DEFERRED_FKS)[0]:
            raise ConstraintViolation("FOREIGN KEY constraint failed")

    def seal_ahead(self, capture: Capture, schema_version: int) -> None:
        """Seal the rows a big transaction changed so far, while it goes on (caller holds
        the store for write; the statement that changed them succeeded).

        The work of sealing a row is the same at a statement's end as at the commit, so a
        bulk transaction's COMMIT is left with the log's write and sync and the replica's
        COMMIT. Each step seals the changes since the one before; replayed in order, the
        steps give the transaction's final state. Anything that could make a sealed step
        disagree with the rows (a ROLLBACK TO, DDL, a row that does not validate) makes the
        capture stale, and the commit then seals the whole transaction afresh, as without
        this; nothing sealed ahead is written before the commit.
        """
        if capture.stale or self.replica.schema_version() != schema_version:
            capture.stale = True
            return
        replayer = self._require_replayer()
        if capture.ahead is None:
            capture.ahead, capture.ahead_seq = self._new_builder(replayer.seq + 1), replayer.seq + 1
        skip = capture.whole | capture.dropped
        collecting = gc.isenabled()
        gc.disable()  # as in commit: the sealed entries live until the commit
        try:
            capture.ahead.captured(capture, skip)
            capture.sealed(skip)
        except (StoreError, apsw.Error) as exc:
            # The commit seals everything again and raises this, if it still holds then.
            logger.debug("sealing ahead stopped: %s", exc)
            capture.stale = True
        finally:
            if collecting:
                gc.enable()

    def _new_builder(self, seq: int) -> RecordBuilder:
        keyring = self._require_keyring()
        return RecordBuilder(sealer=keyring.active, store_id=self._store_id,
                             naming_key=keyring.naming_key, seq=seq,
                             key_hashers=self._require_replayer().key_hashers, cache=self.cache)

    def _sealed_ahead(self, capture: Capture, schema_changed: bool) -> RecordBuilder | None:
        """The records sealed ahead, if the commit can go on from them (else: forgotten)."""
        builder = capture.ahead
        if builder is None:
            return None
        if (capture.stale or schema_changed or capture.pragmas_changed
                or capture.ahead_seq != self._require_replayer().seq + 1):
            capture.unseal()
            return None
        METRICS["commits_sealed_ahead"] += 1
        return builder

    def _seal_changes(self, capture: Capture, schema_version: int) -> RecordBuilder:
        """The transaction's changes, validated and sealed into records (nothing written
        yet): what was sealed ahead, then the catalog and the tables exported whole
        (created or altered in the transaction, or not followable row by row), then the
        changed rows."""
        replayer = self._require_replayer()
        replica = replayer.replica
        replica.stop_capture()
        schema_changed = replica.schema_version() != schema_version
        changed: set[str] = set()
        if schema_changed:
            self._tables_dirty = True
            changed = replica.refresh_tables()
        whole = changed | capture.whole | capture.dropped
        builder = self._sealed_ahead(capture, schema_changed)
        if builder is None:
            builder = self._new_builder(replayer.seq + 1)
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
        self._keeper.mark_for_rebuild()

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
        self._keeper.move_to(Position(replayer.seq, self._log_name, log.start, log.start,
                                      replayer.seq + 1))

    def wait_for_checkpoint(self, timeout: float = 120.0) -> None:
        """Let a background checkpoint finish (before closing: its switch needs the lock)."""
        self._background.wait(timeout)

    # what a background checkpoint (``background_checkpoint.py``) and the replica keeper
    # (``replica_keeper.py``) read and move

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
        return self._keeper.path()

    def moved_to_log(self, log: Log, position: Position) -> None:
        """A checkpoint switched to ``log``, synced with every commit up to ``position``
        (lock held): commits append there from now on."""
        self._log = log
        self._log_name = self.header.log["file"]
        self._sync.covered(position.seq)
        self._keeper.move_to(position)

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
        self._keeper.close()
        self.storage.close()  # gives the writer lock up and closes its file
