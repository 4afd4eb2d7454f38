"""The store: the encrypted system of record behind one in-memory replica.

A ``Store`` is shared by every DB-API connection of a process to one store
directory. Transactions are serialized: a transaction holds the process
mutex and the store's inter-process ``flock`` from its first statement to its
end, and catches up with other processes' commits when it starts. So each
transaction sees every commit acknowledged before it began, and concurrent
read-modify-write transactions cannot lose updates (the isolation level is
SERIALIZABLE, by serial execution).

Commit path: capture the transaction's row changes (SQLite session
extension), validate each row against its table's JSON Schema, seal each row
as its own entity, append one sealed record to the log and ``fsync`` (the
commit point), then COMMIT the replica.
"""

from __future__ import annotations

import fcntl
import gc
import mmap
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import apsw
import orjson

from deltadb_dialect import keys as keymod
from deltadb_dialect.cache import EntityCache
from deltadb_dialect.errors import (
    CorruptStoreError,
    LockTimeoutError,
    StoreError,
    TamperError,
    WrongKeyError,
)
from deltadb_dialect.keys import Keyring, MasterKeySource, MasterWrap
from deltadb_dialect.layout import (
    Header,
    StoreLayout,
    key_tag,
    new_file_name,
    table_tag,
)
from deltadb_dialect.log import (
    CATALOG,
    CONTINUED,
    DELETE,
    RESET,
    UPSERT,
    Entry,
    LogFile,
    Record,
    decode_entries,
    entity_aad,
)
from deltadb_dialect.records import RecordBuilder, catalog_aad
from deltadb_dialect.replica import (
    Capture,
    EntityChange,
    Replica,
    TableInfo,
    canonical_key,
    decode_value,
    sync_catalog,
)
from deltadb_dialect.snapshot import Snapshot, write_snapshot

# Entities are applied to the replica in batches of this many final row states.
APPLY_BATCH = 20_000

# Lock retention: a process keeps the store's flock between its transactions, so
# back-to-back transactions cost no lock/unlock/fstat system calls. A process that wants
# the lock sets a flag in the (mapped) lock file and wakes the holder's helper thread
# through a datagram to the holder's abstract socket, whose name the holder publishes in
# the lock file. The holder gives the lock up at the end of its running transaction, or
# at once (helper thread) when it is between transactions. With nobody asking, the
# helper still gives the lock up after this long without a transaction (it wakes this
# often while the lock is kept, so a waiter that cannot wake it waits at most about this).
LOCK_IDLE_SECONDS = 1.0
HANDOVER_SECONDS = 0.002  # after giving the lock to a waiter, wait this long to take it back
LOCK_FILE_BYTES = 32  # byte 0: "a process is waiting"; bytes 8-24: the holder's wake token
_WAKE_PREFIX = b"\0deltadb-lock-"


class ConstraintViolation(StoreError):
    """A constraint SQLite checks only at COMMIT (deferred foreign keys) failed."""


@dataclass(frozen=True)
class StoreOptions:
    timeout: float = 30.0  # seconds to wait for the store's lock
    checkpoint_bytes: int = 64 * 1024 * 1024  # pack the log into a snapshot beyond this
    create: bool = True
    cache_size: int = 1024
    cache_ttl: float = 300.0


METRICS: dict[str, int] = {
    "commits": 0,
    "records_written": 0,
    "entities_written": 0,
    "records_replayed": 0,
    "encryption_failures": 0,
    "catch_ups": 0,
    "rebuilds": 0,
    "checkpoints": 0,
    "lock_waits": 0,
}


class DeferredCommits:
    """What a `Store.deferring_sync()` block committed: the last sequence number, or None."""

    __slots__ = ("seq",)

    def __init__(self) -> None:
        self.seq: int | None = None


class Store:
    """One open store directory: keys, log, snapshot and the replica."""

    def __init__(self, layout: StoreLayout, options: StoreOptions) -> None:
        self.layout = layout
        self.options = options
        self.mutex = threading.Lock()
        self.owner_thread: int | None = None
        self.replica = Replica()
        self.seq = 0
        self.key_fingerprint = ""
        self.refcount = 0
        self._lock_fd = -1
        self._anchor_fd = -1
        self._lock_map: mmap.mmap | None = None  # the lock file's shared "wanted" flag
        self._flock_held = False  # this process holds the flock (in or between transactions)
        self._activity = 0  # transactions started; the idle thread watches it move
        self._idle_wake = threading.Event()
        self._idle_thread: threading.Thread | None = None
        self._wake_token = secrets.token_bytes(16)  # names this process's wake socket
        self._wake_sender: socket.socket | None = None
        self._closing = False
        self._yield_until = 0.0
        self._header: Header | None = None
        self._store_id = b""
        self._keyring: Keyring | None = None
        self._log: LogFile | None = None
        self._log_end = 0
        self._catalog: dict[str, Any] = {"objects": [], "history": {}}
        self._tags: dict[bytes, TableInfo] = {}
        self._tag_of: dict[str, bytes] = {}  # table name -> keyed hash, computed once
        # table name -> (table tag, BLAKE2b pre-keyed for its key tags), computed once
        self._key_hashers: dict[str, tuple[bytes, Any]] = {}
        self._needs_rebuild = False
        self._tables_dirty = False
        # Deferred sync (group commit, see deferring_sync): the highest sequence number known
        # to be on stable storage, the (log, seq) of the last commit written but not synced,
        # and why syncing failed, once it has (the store then refuses further transactions).
        self._durable_seq = 0
        self._unsynced: tuple[LogFile, int] | None = None
        self._sync_lock = threading.Lock()
        self._sync_failure: str | None = None
        self._deferring = threading.local()
        self._functions: dict[tuple[str, int], tuple[Any, bool]] = {}
        self._functions_lock = threading.Lock()
        self._functions_pending = False
        # SQL text -> (cursor description,), shared by this process's connections;
        # cleared whenever the schema changes.
        self.statement_cache: dict[str, tuple[Any]] = {}
        self.cache = EntityCache(options.cache_size, options.cache_ttl)

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], source: MasterKeySource,
             options: StoreOptions | None = None) -> Store:
        store = cls(StoreLayout(path), options or StoreOptions())
        store._open(source)
        return store

    def _open(self, source: MasterKeySource) -> None:
        root = self.layout.root
        if not self.layout.exists():
            if not self.options.create:
                raise CorruptStoreError(f"{root} is not a DeltaDB store")
            self.layout.create_directory()
        if not os.access(root, os.W_OK):
            raise StoreError(f"the store directory {root} is not writable")
        self._lock_fd = os.open(self.layout.lock, os.O_RDWR | os.O_CREAT, 0o600)
        self._map_lock_file()
        self.key_fingerprint = source.fingerprint()
        with self.mutex:
            self._flock()
            self._flock_held = True
            try:
                if not self.layout.exists():
                    self._initialize(source)
                self._unlock_keys(source)
                self._rebuild()
                self._check_anchor()
                self._drop_torn_tail(full=True)
                self._remove_orphans()
            finally:
                self._unlock()

    def _map_lock_file(self) -> None:
        """Map the lock file's flag byte (shared by every process); without it, never retain."""
        try:
            if os.fstat(self._lock_fd).st_size < LOCK_FILE_BYTES:
                # Written, not just extended: a store into a mapped hole could fault on a full disk.
                os.pwrite(self._lock_fd, bytes(LOCK_FILE_BYTES), 0)
            self._lock_map = mmap.mmap(self._lock_fd, LOCK_FILE_BYTES)
        except (OSError, ValueError):
            self._lock_map = None

    # The anchor records the last committed sequence number, written (not fsynced) after
    # each commit's fsync, so it never runs ahead of the log. A log that ends before it
    # was cut or replaced by an older copy of itself: refused at open. (Rolling the whole
    # directory back together, like restoring a backup, cannot be told from a backup.)
    def _write_anchor(self) -> None:
        seq = self.seq.to_bytes(8, "big")
        mac = bytes.fromhex(self._require_keyring().header_mac(b"anchor" + self._store_id + seq))
        try:
            if self._anchor_fd < 0:  # kept open: one pwrite per commit
                self._anchor_fd = os.open(self.layout.anchor, os.O_WRONLY | os.O_CREAT, 0o600)
            os.pwrite(self._anchor_fd, seq + mac, 0)
        except OSError:
            self._close_anchor()  # reopened at the next commit
            # the commit is durable already; the anchor only strengthens detection

    def _close_anchor(self) -> None:
        if self._anchor_fd >= 0:
            try:
                os.close(self._anchor_fd)
            except OSError:
                pass
            self._anchor_fd = -1

    def _acknowledged(self) -> int | None:
        """The last acknowledged sequence number per the anchor; None if there is none."""
        try:
            data = self.layout.anchor.read_bytes()
        except FileNotFoundError:
            return None
        seq, mac = data[:8], data[8:40]
        expected = self._require_keyring().header_mac(b"anchor" + self._store_id + seq)
        if len(data) != 40 or not secrets.compare_digest(expected, mac.hex()):
            raise TamperError(f"the commit anchor of {self.layout.root} failed to authenticate")
        return int.from_bytes(seq, "big")

    def _check_anchor(self) -> None:
        committed = self._acknowledged()
        if committed is not None and committed > self.seq:
            raise TamperError(
                f"the store's log ends at commit {self.seq} but commit {committed} was "
                "acknowledged: the log was truncated or replaced by an older copy"
            )

    def _drop_torn_tail(self, *, full: bool) -> None:
        """Cut off what a crashed writer left after the log's end (caller holds the lock,
        so nobody is writing). ``full``: look at every byte to the end of the file (at
        open: a power loss can leave a torn write whose first block is still zero);
        otherwise only where the next record would start (a killed process writes a
        prefix, so a torn write it left starts there)."""
        log = self._log
        assert log is not None
        torn = (log.has_data_after(self._log_end) if full
                else log.has_data_at(self._log_end))
        if torn:
            log.truncate(self._log_end)

    def _remove_orphans(self) -> None:
        """Files a crash left behind mid-checkpoint (lock held: nobody is writing them)."""
        header = self._header
        assert header is not None
        live = {header.log["file"]} | ({header.snapshot["file"]} if header.snapshot else set())
        for path in self.layout.root.iterdir():
            leftover = path.name.endswith(".tmp") or (
                path.name.startswith(("log-", "snap-")) and path.name not in live)
            if leftover and path.is_file():
                path.unlink(missing_ok=True)

    def _initialize(self, source: MasterKeySource) -> None:
        store_id = secrets.token_bytes(16)
        kdf = None
        if source.passphrase is not None:
            kdf = dict(keymod.DEFAULT_KDF_PARAMS, salt=secrets.token_hex(16))
        master = keymod.master_key_for(source, kdf)
        store_key = secrets.token_bytes(keymod.KEY_BYTES)
        keyring = Keyring(store_id=store_id, store_key=store_key)
        log_name = new_file_name("log")
        header = Header(
            store_id=store_id,
            store_key=MasterWrap(master, store_id).wrap_store_key(store_key),
            data_keys={1: keyring.wrap_data_key(1, secrets.token_bytes(keymod.KEY_BYTES))},
            active_kid=1,
            kdf=kdf,
            log={"file": log_name, "base_seq": 0},
        )
        LogFile.create(self.layout.file(log_name), store_id=store_id, base_seq=0, keyring=keyring)
        self.layout.write_header(header, keyring.header_mac)

    def _unlock_keys(self, source: MasterKeySource) -> None:
        body, mac = self.layout.read_header_json()
        store_id = bytes.fromhex(body["store_id"])
        master = keymod.master_key_for(source, body.get("kdf"))
        from deltadb_dialect.layout import unb64

        store_key = MasterWrap(master, store_id).unwrap_store_key(unb64(body["store_key"]))
        if store_key is None:
            raise WrongKeyError(
                f"the master key does not open the store at {self.layout.root} "
                "(wrong DELTADB_MASTER_KEY, key file or passphrase)"
            )
        self._keyring = Keyring(store_id=store_id, store_key=store_key)
        self._load_header(body, mac)

    def _load_header(self, body: dict[str, Any], mac: str) -> None:
        keyring = self._require_keyring()
        if not secrets.compare_digest(keyring.header_mac(Header.canonical(body)), mac):
            raise TamperError(f"the store header of {self.layout.root} failed to authenticate")
        header = Header.from_body(body)
        if header.store_id != keyring.store_id:
            raise CorruptStoreError("the store header belongs to another store")
        self._store_id = header.store_id
        for kid, wrapped in header.data_keys.items():
            if kid not in keyring.data:
                keyring.add_wrapped_data_key(kid, wrapped)
        keyring.active_kid = header.active_kid
        self._header = header

    def _require_keyring(self) -> Keyring:
        if self._keyring is None:
            raise StoreError("the store is not open")
        return self._keyring

    # --- rebuilding the replica ----------------------------------------------------------

    def _rebuild(self) -> None:
        """Build a fresh replica from the snapshot and the log (caller holds the lock)."""
        header = self._header
        assert header is not None
        METRICS["rebuilds"] += 1
        old, self.replica = self.replica, Replica()
        old.close()
        self._catalog = {"objects": [], "history": {}}
        self._tags = {}
        self.seq = header.log.get("base_seq", 0)
        conn = self.replica.conn
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("BEGIN")
        if header.snapshot:
            self._load_snapshot(header.snapshot)
        if self._log is not None:
            self._log.close()
        self._log = LogFile(self.layout.file(header.log["file"]),
                            store_id=header.store_id, keyring=self._require_keyring())
        self._log_end = self._log.start
        self._replay_log(in_transaction=True)
        self.replica.create_triggers(self._catalog)
        conn.execute("COMMIT")
        conn.execute("PRAGMA foreign_keys=ON")
        self._needs_rebuild = False
        self.statement_cache.clear()
        self.cache.clear()
        self._install_functions()

    def _load_snapshot(self, info: dict[str, Any]) -> None:
        header = self._header
        assert header is not None
        snapshot = Snapshot(self.layout.file(info["file"]), store_id=header.store_id,
                            expected_sha256=info["sha256"])
        sealer = self._require_keyring().sealer(snapshot.kid)
        catalog = orjson.loads(sealer.open(snapshot.sealed_catalog,
                                         catalog_aad(header.store_id, snapshot.seq),
                                         what="snapshot catalog"))
        self._apply_catalog(catalog)
        pending: dict[tuple[str, bytes], EntityChange] = {}
        try:
            for entry in snapshot.entries():
                change = self._open_entry(entry, sealer, snapshot.seq)
                if change is not None:
                    pending[(change.table.name, entry.key_tag)] = change
                if len(pending) >= APPLY_BATCH:
                    self.replica.apply(pending)
                    pending = {}
        finally:
            snapshot.close()
        self.replica.apply(pending)
        self.seq = snapshot.seq

    def _apply_catalog(self, catalog: dict[str, Any]) -> set[str]:
        self.statement_cache.clear()
        self.cache.clear()
        changed = sync_catalog(self.replica, catalog)
        self._catalog = catalog
        self._retag()
        return changed

    def _table_tag(self, name: str) -> bytes:
        tag = self._tag_of.get(name)
        if tag is None:
            tag = self._tag_of[name] = table_tag(self._require_keyring().naming_key, name)
        return tag

    def _retag(self) -> None:
        keyring = self._require_keyring()
        self._tags = {table_tag(keyring.naming_key, name): info
                      for name, info in self.replica.tables.items()}

    def _open_entry(self, entry: Entry, sealer: Any, version: int) -> EntityChange | None:
        """Authenticate and decode one entity (the hot loop of opening a store)."""
        table = self._tags.get(entry.table_tag)
        aad = entity_aad(self._store_id, entry.op, entry.table_tag, entry.key_tag, version)
        try:
            plain = sealer.open(entry.sealed, aad, what="entity")
        except TamperError as exc:
            METRICS["encryption_failures"] += 1
            name = table.name if table else "(dropped table)"
            raise TamperError(f"{exc} (table {name!r}, version {version})") from None
        if table is None:
            return None  # a table dropped later in the same transaction
        document = orjson.loads(plain)
        if entry.op == DELETE:
            return EntityChange(table, tuple(decode_value(v) for v in document), None)
        # Upserts are applied by whole row (INSERT OR REPLACE): no key needed here.
        return EntityChange(table, (), document)

    def _replay_log(self, *, in_transaction: bool) -> int:
        """Apply complete transactions appended since our position; returns how many records."""
        log = self._log
        assert log is not None
        conn = self.replica.conn
        if not in_transaction:
            if not log.has_data_at(self._log_end):
                return 0
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("BEGIN")
        triggers = self.replica.drop_triggers() if not in_transaction else []
        try:
            applied = self._replay_records(
                log.records(self._log_end, self.seq + 1, self._acknowledged))
            if triggers:
                self.replica.create_triggers(self._catalog)
            if not in_transaction:
                conn.execute("COMMIT")
        except BaseException:
            if not in_transaction:
                conn.execute("ROLLBACK")
            self._needs_rebuild = True
            raise
        finally:
            if not in_transaction:
                conn.execute("PRAGMA foreign_keys=ON")
        return applied

    def _replay_records(self, records: Iterator[Record]) -> int:
        """Feed whole transactions to the replica; a transaction's records apply only together."""
        replay = _Replay(self)
        waiting: list[Record] = []  # records of a transaction whose last record is not seen yet
        applied = 0
        for record in records:
            waiting.append(record)
            if record.flags & CONTINUED:
                continue
            for part in waiting:
                replay.feed(part)
            applied += len(waiting)
            self._log_end, self.seq = record.end, record.seq
            waiting = []
        replay.flush()
        return applied

    # --- transactions --------------------------------------------------------------------

    def acquire(self, timeout: float | None = None) -> None:
        """Take the store for one transaction and catch up with other processes.

        If this process still holds the flock from its previous transaction, no other
        process can have committed since: there is nothing to catch up with.
        """
        wait = self.options.timeout if timeout is None else timeout
        if self._sync_failure is not None:
            raise StoreError(self._sync_failure)
        if self.owner_thread == threading.get_ident():
            raise LockTimeoutError(
                "database is locked: another connection in this thread has an open "
                "transaction; commit or close it first"
            )
        if not self.mutex.acquire(timeout=wait):
            raise LockTimeoutError(
                f"database is locked: another connection in this process held the store "
                f"for more than {wait:g} s"
            )
        try:
            if not self._flock_held:
                if self._yield_until:  # we just handed the lock over: let the waiter take it
                    pause = self._yield_until - time.monotonic()
                    self._yield_until = 0.0
                    if pause > 0:
                        time.sleep(pause)
                self._flock(wait)
                self._flock_held = True
                try:
                    self._catch_up()
                except BaseException:
                    self._unlock()
                    raise
                self._watch_idle()
            elif self._needs_rebuild:
                try:
                    self._catch_up()
                except BaseException:
                    self._unlock()
                    raise
        except BaseException:
            self.mutex.release()
            raise
        self._activity += 1
        self.owner_thread = threading.get_ident()

    def release(self) -> None:
        """End a transaction; keep the flock unless another process waits for it."""
        self.owner_thread = None
        flag = self._lock_map
        if flag is None:
            self._unlock()
        elif flag[0]:
            self._unlock()
            self._yield_until = time.monotonic() + HANDOVER_SECONDS
        self.mutex.release()

    def _unlock(self) -> None:
        self._flock_held = False
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def would_wait(self) -> bool:
        """Whether beginning a transaction now might block: another thread of this process
        has the store, or this process has not kept the store's lock since its last
        transaction (so another process may hold it, or commits may be waiting to be replayed).
        A hint for callers choosing where to run short work; it can be stale at once."""
        return self.mutex.locked() or not self._flock_held

    def held_by_this_thread(self) -> bool:
        """True while another connection of this thread holds the store (see dbapi guests)."""
        return self.owner_thread == threading.get_ident()

    def _flock(self, wait: float | None = None) -> None:
        flag = self._lock_map
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            METRICS["lock_waits"] += 1
        deadline = time.monotonic() + (self.options.timeout if wait is None else wait)
        pause = 0.0002
        while True:
            if flag is not None:
                flag[0] = 1  # ask the holder to give the lock up (re-asserted at each try)
                self._wake_holder(flag)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if flag is not None:
                    flag[0] = 0  # other waiters set it again at their next try
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        "database is locked: another process held the store for too long"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def _wake_holder(self, flag: mmap.mmap) -> None:
        """Wake the lock holder's helper thread (best effort: the flag is what counts)."""
        token = flag[8:24]
        if not any(token):
            return
        try:
            if self._wake_sender is None:
                self._wake_sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._wake_sender.setblocking(False)
            self._wake_sender.sendto(b"!", _WAKE_PREFIX + token.hex().encode())
        except OSError:
            pass  # no such holder any more, or not Linux: it gives the lock up when idle

    def _watch_idle(self) -> None:
        """Publish our wake token; have the helper thread give the lock up when asked or idle."""
        flag = self._lock_map
        if flag is None:
            return
        flag[8:24] = self._wake_token
        if self._idle_thread is None:
            self._idle_thread = threading.Thread(target=self._idle_release, daemon=True,
                                                 name="deltadb-lock-release")
            self._idle_thread.start()
        self._idle_wake.set()

    def _idle_release(self) -> None:
        receiver: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            assert receiver is not None
            receiver.bind(_WAKE_PREFIX + self._wake_token.hex().encode())
            receiver.settimeout(LOCK_IDLE_SECONDS)
        except (OSError, AssertionError):
            if receiver is not None:
                receiver.close()
            receiver = None  # no abstract sockets here: check the flag every few ms instead
        try:
            while not self._closing:
                self._idle_wake.wait()
                self._idle_wake.clear()
                seen = -1
                while self._flock_held and not self._closing:
                    if receiver is not None:
                        try:
                            receiver.recv(16)
                        except TimeoutError:
                            pass
                    else:
                        time.sleep(0.002)
                    flag = self._lock_map
                    try:
                        wanted = flag is not None and flag[0]
                    except ValueError:  # unmapped by close()
                        return
                    if self._activity != seen and not wanted:
                        seen = self._activity  # busy: keep the lock for the next transaction
                        continue
                    if not self.mutex.acquire(blocking=False):
                        continue  # a transaction is running; it gives the lock up at its end
                    try:
                        if self._flock_held and self.owner_thread is None and not self._closing:
                            self._unlock()
                            if wanted:
                                self._yield_until = time.monotonic() + HANDOVER_SECONDS
                    except OSError:
                        pass
                    finally:
                        self.mutex.release()
        finally:
            if receiver is not None:
                receiver.close()

    def _stop_idle_thread(self) -> None:
        self._closing = True
        self._idle_wake.set()
        if self._idle_thread is not None:
            try:
                sender = self._wake_sender or socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sender.sendto(b"!", _WAKE_PREFIX + self._wake_token.hex().encode())
                if sender is not self._wake_sender:
                    sender.close()
            except OSError:
                pass
        if self._wake_sender is not None:
            self._wake_sender.close()
            self._wake_sender = None

    def _after_fork_in_child(self) -> None:
        """A forked child shares the parent's lock file description: take its own."""
        self._flock_held = False
        self._idle_thread = None
        self._idle_wake = threading.Event()
        self._wake_token = secrets.token_bytes(16)
        self._wake_sender = None
        if self._lock_fd >= 0:
            inherited = self._lock_fd
            self._lock_fd = os.open(self.layout.lock, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(inherited)  # the parent's lock stays: its own descriptor still refers to it

    def _catch_up(self) -> None:
        if self._needs_rebuild:
            self._reload_header()
            self._rebuild()
            self._drop_torn_tail(full=False)
            return
        log = self._log
        assert log is not None
        status = os.fstat(log.fileno())
        if status.st_nlink == 0:
            # Another process checkpointed: our log was replaced (and unlinked).
            self._follow_header_change()
            log = self._log
            assert log is not None
            status = os.fstat(log.fileno())
        if status.st_size > self._log_end and log.has_data_at(self._log_end):
            METRICS["catch_ups"] += 1
            self._replay_log(in_transaction=False)
            # We hold the lock, so nobody is writing: anything left where the next record
            # would start is a crashed writer's torn record, never acknowledged.
            self._drop_torn_tail(full=False)

    def _reload_header(self) -> None:
        body, mac = self.layout.read_header_json()
        self._load_header(body, mac)
        if self._header is not None and self._header.snapshot:
            # a checkpoint (ours or another process's, after catching up) wrote every commit
            # up to its snapshot durably, whatever log held them before
            self._durable_seq = max(self._durable_seq, self._header.snapshot["seq"])

    def _follow_header_change(self) -> None:
        old_log_name = self._header.log["file"] if self._header else None
        self._replay_log(in_transaction=False)  # finish the log we were reading
        self._reload_header()
        header = self._header
        assert header is not None
        if header.log["file"] == old_log_name:
            return  # keys rotated or metadata changed; same log
        if header.snapshot and header.snapshot["seq"] == self.seq:
            assert self._log is not None
            self._log.close()
            self._log = LogFile(self.layout.file(header.log["file"]),
                                store_id=header.store_id, keyring=self._require_keyring())
            self._log_end = self._log.start
        else:
            self._rebuild()

    def begin(self, *, foreign_keys: bool) -> tuple[Capture, int]:
        """Open the replica transaction (caller holds the store); returns its capture."""
        conn = self.replica.conn
        if self._functions_pending:
            self._install_functions()
        if not foreign_keys:
            conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("BEGIN")
        return self.replica.start_capture(), self.replica.schema_version()

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
        try:
            builder = self._seal_changes(capture, schema_version)
            wrote = builder.entities > 0
            if wrote:
                self._write(builder)
            del builder  # freed here, before collection resumes
        finally:
            if collecting:
                gc.enable()
        conn.execute("COMMIT")
        if not foreign_keys:
            conn.execute("PRAGMA foreign_keys=ON")
        if wrote and self._log and self._log_end - self._log.start > self.options.checkpoint_bytes:
            self.checkpoint()

    def rollback(self, capture: Capture | None, *, foreign_keys: bool) -> None:
        conn = self.replica.conn
        self.replica.stop_capture()
        if not conn.get_autocommit():
            conn.execute("ROLLBACK")
        if not foreign_keys:
            conn.execute("PRAGMA foreign_keys=ON")
        if self._tables_dirty:  # a failed commit had already read the new shapes
            self.replica.refresh_tables()
            self._retag()
            self._tables_dirty = False

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
        self.replica.stop_capture()
        keyring = self._require_keyring()
        schema_changed = self.replica.schema_version() != schema_version
        changed: set[str] = set()
        if schema_changed:
            self._tables_dirty = True
            changed = self.replica.refresh_tables()
        whole = changed | capture.whole | capture.dropped
        builder = RecordBuilder(sealer=keyring.active, store_id=self._store_id,
                                naming_key=keyring.naming_key, seq=self.seq + 1,
                                key_hashers=self._key_hashers, cache=self.cache)
        if schema_changed:
            self._retag()
        if schema_changed or capture.pragmas_changed:
            builder.catalog(self.replica.catalog())
        for name in sorted(whole):
            builder.reset(name)
            table = self.replica.tables.get(name)
            if table is not None:
                for change in self.replica.export_table(table):
                    document = change.document
                    assert document is not None  # an exported row always has one
                    table.validator(document)
                    builder.upsert(table, change.key, document)
        builder.captured(capture, whole)
        return builder

    def _write(self, builder: RecordBuilder) -> None:
        """Append the sealed records and fsync (the commit point, unless syncing is
        deferred: then ``make_durable`` is)."""
        assert self._log is not None
        records = builder.finish()
        block: DeferredCommits | None = getattr(self._deferring, "block", None)
        self._log_end = self._log.append(records, self._log_end, sync=block is None)
        self.seq = seq = builder.seq
        if block is None:
            self._durable_seq, self._unsynced = seq, None  # the sync covered earlier ones too
            self._write_anchor()
        else:
            self._unsynced = (self._log, seq)
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
            for (name, narg), (func, deterministic) in self._functions.items():
                self.replica.conn.create_scalar_function(name, func, narg,
                                                         deterministic=deterministic)
            self._functions_pending = False

    def read_document(self, table: str, key: tuple) -> dict[str, Any] | None:
        """One row as its entity document, through the cache (caller holds the store).

        ``key`` holds the primary key values (or the rowid) in key-column order.
        """
        info = self.replica.tables.get(table)
        if info is None:
            return None
        naming = self._require_keyring().naming_key
        cache_key = (table, key_tag(naming, table_tag(naming, table), canonical_key(key)))
        document = self.cache.get(cache_key)
        if document is None:
            rows = self.replica.conn.execute(info.select_sql, key).fetchall()
            if not rows:
                return None
            document = info.document(rows[0])
            self.cache.put(cache_key, document)
        return dict(document)

    def mark_for_rebuild(self) -> None:
        self._needs_rebuild = True

    # --- checkpoint ------------------------------------------------------------------------

    @contextmanager
    def deferring_sync(self) -> Iterator[DeferredCommits]:
        """Commits made by this thread in the block return once their record is written,
        before the log is synced: visible at once to every transaction, durable only after
        `make_durable(block.seq)`. For a caller that acknowledges nothing before that and
        can gather commits: one sync then covers every commit written before it (group
        commit; the backend's event loop syncs once per round). A later transaction may read
        a commit whose sync is still to come; anything it writes is synced after it, so only
        a power loss in between could undo what such a reader saw."""
        block = DeferredCommits()
        self._deferring.block = block
        try:
            yield block
        finally:
            self._deferring.block = None

    def make_durable(self, seq: int) -> None:
        """Sync the log up to commit `seq`; from any thread, while other transactions run."""
        if self._durable_seq >= seq:
            return
        with self._sync_lock:
            if self._durable_seq >= seq:
                return  # another caller's sync covered it
            if self._sync_failure is not None:
                raise StoreError(self._sync_failure)
            unsynced = self._unsynced
            if unsynced is None:
                return  # a synced commit or a checkpoint covered it (and moved _durable_seq)
            log, last = unsynced
            try:
                log.sync()
            except OSError as exc:
                if self._durable_seq >= seq:
                    return  # the log was replaced by a checkpoint, which is durable
                self._sync_failure = (
                    f"the store's log could not be synced ({exc.strerror or exc}); commits "
                    "since the last sync may be lost: reopen the store"
                )
                raise StoreError(self._sync_failure) from exc
            self._durable_seq = max(self._durable_seq, last)
            self._anchor_after_sync(last)

    def _anchor_after_sync(self, seq: int) -> None:
        """Move the anchor to a commit just synced, when that is still the store's newest one
        and this process holds the store (else a newer commit's own anchor follows)."""
        if not self.mutex.acquire(blocking=False):
            return  # a transaction runs: its commit (or its sync) writes a newer anchor
        try:
            if self._flock_held and self.seq == seq:
                self._write_anchor()
        finally:
            self.mutex.release()

    def checkpoint(self) -> None:
        """Pack every live entity into a new snapshot and start an empty log (lock held)."""
        header = self._header
        keyring = self._require_keyring()
        assert header is not None and self._log is not None
        seq = self.seq
        sealer = keyring.active
        catalog = orjson.dumps(self.replica.catalog())
        snap_name = new_file_name("snap")
        digest = write_snapshot(
            self.layout.file(snap_name), store_id=header.store_id, seq=seq, kid=sealer.key_id,
            sealed_catalog=sealer.seal(catalog, catalog_aad(header.store_id, seq)),
            entries=self._snapshot_entries(seq, sealer),
        )
        log_name = new_file_name("log")
        new_log = LogFile.create(self.layout.file(log_name), store_id=header.store_id,
                                 base_seq=seq, keyring=keyring)
        old_files = [header.log["file"]] + ([header.snapshot["file"]] if header.snapshot else [])
        header.snapshot = {"file": snap_name, "seq": seq, "sha256": digest}
        header.log = {"file": log_name, "base_seq": seq}
        self.layout.write_header(header, keyring.header_mac)
        self._durable_seq, self._unsynced = max(self._durable_seq, seq), None
        self._log.close()
        self._log, self._log_end = new_log, new_log.start
        for name in old_files:
            self.layout.file(name).unlink(missing_ok=True)
        METRICS["checkpoints"] += 1

    def _snapshot_entries(self, seq: int, sealer: Any) -> Iterator[Entry]:
        for table in list(self.replica.tables.values()):
            for change in self.replica.export_table(table):
                yield self._snapshot_entry(change, seq, sealer)

    def _snapshot_entry(self, change: EntityChange, seq: int, sealer: Any) -> Entry:
        """One live row sealed for a snapshot, bound to the snapshot's sequence number."""
        ttag = self._table_tag(change.table.name)
        ktag = key_tag(self._require_keyring().naming_key, ttag, canonical_key(change.key))
        aad = entity_aad(self._store_id, UPSERT, ttag, ktag, seq)
        return Entry(UPSERT, ttag, ktag, sealer.seal(orjson.dumps(change.document), aad))

    # --- keys -------------------------------------------------------------------------------

    def rotate_master_key(self, new_source: MasterKeySource) -> None:
        """Re-wrap the store key under a new master key (caller holds the store).

        Rows and data keys are untouched; processes already running keep working.
        """
        header = self._header
        keyring = self._require_keyring()
        assert header is not None
        kdf = None
        if new_source.passphrase is not None:
            kdf = dict(keymod.DEFAULT_KDF_PARAMS, salt=secrets.token_hex(16))
        master = keymod.master_key_for(new_source, kdf)
        header.kdf = kdf
        header.store_key = MasterWrap(master, header.store_id).wrap_store_key(keyring.store_key)
        self.layout.write_header(header, keyring.header_mac)
        self.key_fingerprint = new_source.fingerprint()

    def close(self) -> None:
        if self._unsynced is not None and self._sync_failure is None:
            try:
                self.make_durable(self._unsynced[1])
            except StoreError:
                pass  # reported to the caller that waited for it, if any
        self._stop_idle_thread()
        self._close_anchor()
        if self._log is not None:
            self._log.close()
            self._log = None
        self.replica.close()
        if self._lock_fd >= 0:
            if self._flock_held:
                self._unlock()
            os.close(self._lock_fd)
            self._lock_fd = -1
        flag, self._lock_map = self._lock_map, None
        if flag is not None:
            flag.close()


class _Replay:
    """Applies decrypted entities in merged batches: one write per final row state."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: dict[tuple[str, bytes], EntityChange] = {}

    def flush(self) -> None:
        self.store.replica.apply(self.pending)
        self.pending = {}

    def feed(self, record: Record) -> None:
        store = self.store
        sealer = store._require_keyring().sealer(record.kid)
        METRICS["records_replayed"] += 1
        for entry in decode_entries(record.payload, what=f"log record {record.seq}"):
            if entry.op == CATALOG:
                self.flush()
                catalog = orjson.loads(sealer.open(
                    entry.sealed, catalog_aad(store._store_id, record.seq),
                    what=f"catalog in log record {record.seq}"))
                store._apply_catalog(catalog)
            elif entry.op == RESET:
                self.flush()
                table = store._tags.get(entry.table_tag)
                if table is not None:
                    store.replica.apply({}, reset_tables=[table.name])
                    store.cache.discard_table(table.name)
            else:
                change = store._open_entry(entry, sealer, record.seq)
                if change is not None:
                    self.pending[(change.table.name, entry.key_tag)] = change
                    store.cache.discard((change.table.name, entry.key_tag))
        if len(self.pending) >= APPLY_BATCH:  # bounded memory; records are whole states
            self.flush()


# --- the process-wide registry: one Store per directory -----------------------------------

_registry: dict[str, Store] = {}
_registry_lock = threading.Lock()


def connect_store(path: str, source: MasterKeySource, options: StoreOptions) -> Store:
    real = os.path.realpath(path)
    with _registry_lock:
        store = _registry.get(real)
        if store is None:
            store = Store.open(real, source, options)
            _registry[real] = store
        elif not secrets.compare_digest(store.key_fingerprint, source.fingerprint()):
            # Same process, same store, another key: check it properly instead of trusting it.
            _check_key_only(real, source)
        store.refcount += 1
        return store


def _after_fork_in_child() -> None:
    for store in _registry.values():
        store._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def disconnect_store(store: Store) -> None:
    with _registry_lock:
        store.refcount -= 1
        if store.refcount <= 0:
            _registry.pop(str(store.layout.root), None)
            with store.mutex:
                store.close()


def open_stores() -> list[Store]:
    with _registry_lock:
        return list(_registry.values())


def store_metrics() -> dict[str, int]:
    """Process-wide counters, for /metrics endpoints (no contents, no keys)."""
    metrics = dict(METRICS)
    stores = open_stores()
    metrics["cache_hits"] = sum(s.cache.hits for s in stores)
    metrics["cache_misses"] = sum(s.cache.misses for s in stores)
    metrics["cache_entries"] = sum(len(s.cache) for s in stores)
    metrics["open_stores"] = len(stores)
    return metrics


def _check_key_only(path: str, source: MasterKeySource) -> None:
    layout = StoreLayout(path)
    body, _ = layout.read_header_json()
    master = keymod.master_key_for(source, body.get("kdf"))
    from deltadb_dialect.layout import unb64

    if MasterWrap(master, bytes.fromhex(body["store_id"])).unwrap_store_key(
        unb64(body["store_key"])
    ) is None:
        raise WrongKeyError(f"the master key does not open the store at {path}")

