"""Replay: the replica brought to the state of a snapshot plus the log records after it.

A ``Replayer`` owns the replica and what it knows of it: the catalog (the schema as
SQL), the keyed hashes of its tables, and the position it has applied up to (the
sequence number and where in the log the next record starts). It authenticates and
decodes each entity and applies final row states in merged batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from deltadb_dialect.cache import EntityCache
from deltadb_dialect.errors import CorruptStoreError, TamperError
from deltadb_dialect.keys import Keyring
from deltadb_dialect.layout import key_tag, table_tag
from deltadb_dialect.log import (
    CATALOG,
    CONTINUED,
    DELETE,
    RESET,
    UPSERT,
    Entry,
    Record,
    decode_entries,
    entity_aad,
)
from deltadb_dialect.records import catalog_aad
from deltadb_dialect.replica import (
    EntityChange,
    Replica,
    TableInfo,
    canonical_key,
    decode_value,
    sync_catalog,
)
from deltadb_dialect.replica_file import Position, write_catalog, write_position
from deltadb_dialect.snapshot import Snapshot
from deltadb_dialect.storage import Log

# Entities are applied to the replica in batches of this many final row states.
APPLY_BATCH = 20_000

METRICS: dict[str, int] = {"records_replayed": 0, "encryption_failures": 0, "rebuilds": 0}


class Replayer:
    """The replica, its catalog and table tags, and the log position it has applied."""

    def __init__(self, *, keyring: Keyring, store_id: bytes, cache: EntityCache,
                 statement_cache: dict[str, Any], replica: Replica) -> None:
        self.keyring = keyring
        self.store_id = store_id
        self.cache = cache
        self.statement_cache = statement_cache
        self.replica = replica
        self.catalog: dict[str, Any] = {"objects": [], "history": {}}
        self._catalog_dirty = False  # applied but not yet written to the replica's state
        self.tags: dict[bytes, TableInfo] = {}
        self._tag_of: dict[str, bytes] = {}  # table name -> keyed hash, computed once
        # table name -> (table tag, BLAKE2b pre-keyed for its key tags), computed once
        self.key_hashers: dict[str, tuple[bytes, Any]] = {}
        self.seq = 0  # the last sequence number applied
        self.log_end = 0  # where the next record starts in the current log
        self.log_file = ""  # the current log's name
        self.commit_start = 0  # where the last commit's records start ...
        self.commit_seq = 0  # ... and its first sequence number

    def position(self) -> Position:
        return Position(self.seq, self.log_file, self.log_end, self.commit_start,
                        self.commit_seq)

    def move_to(self, position: Position) -> None:
        self.seq, self.log_file, self.log_end = position.seq, position.log_file, position.log_end
        self.commit_start, self.commit_seq = position.commit_start, position.commit_seq

    def committed(self, *, start: int, first_seq: int, seq: int, end: int) -> None:
        """A commit of this process was appended at ``start``..``end``."""
        self.commit_start, self.commit_seq, self.seq, self.log_end = start, first_seq, seq, end

    def save_position(self) -> None:
        """Write the position (and the catalog, if it moved) into the replica's state, in
        the replica transaction that is open."""
        conn = self.replica.conn
        write_position(conn, self.position())
        if self._catalog_dirty:
            write_catalog(conn, orjson.dumps(self.catalog))
            self._catalog_dirty = False

    def adopt_catalog(self, raw: bytes | None) -> None:
        """Another process changed the schema: take its catalog (schema history) and re-read
        the tables' shapes from the replica."""
        if raw is not None:
            self.catalog = orjson.loads(raw)
            self.replica.schema_history = self.catalog.get("history", {})
        self.replica.refresh_tables()
        self.retag()
        self.statement_cache.clear()
        self.cache.clear()

    def local_catalog(self, catalog: dict[str, Any]) -> None:
        """This process's own commit changed the catalog (written with its position)."""
        self.catalog = catalog
        self._catalog_dirty = True

    # --- names ----------------------------------------------------------------------------

    def table_tag(self, name: str) -> bytes:
        tag = self._tag_of.get(name)
        if tag is None:
            tag = self._tag_of[name] = table_tag(self.keyring.naming_key, name)
        return tag

    def key_tag(self, table: str, key: tuple) -> bytes:
        return key_tag(self.keyring.naming_key, self.table_tag(table), canonical_key(key))

    def retag(self) -> None:
        self.tags = {self.table_tag(name): info for name, info in self.replica.tables.items()}

    def apply_catalog(self, catalog: dict[str, Any]) -> set[str]:
        self.statement_cache.clear()
        self.cache.clear()
        changed = sync_catalog(self.replica, catalog)
        self.catalog = catalog
        self._catalog_dirty = True
        self.retag()
        return changed

    # --- a whole rebuild --------------------------------------------------------------------

    def rebuild(self, replica: Replica, snapshot: Snapshot | None, log: Log, log_file: str,
                acknowledged: Callable[[], int | None], *, base_seq: int) -> None:
        """Fill a new, empty replica from a snapshot and a log, and make it this replayer's
        (caller holds the store's lock). On failure the new replica is left unused."""
        METRICS["rebuilds"] += 1
        old = self.replica
        self.replica = replica
        self.catalog = {"objects": [], "history": {}}
        self.tags = {}
        self.move_to(Position(base_seq, log_file, log.start, log.start, base_seq + 1))
        conn = replica.conn
        conn.execute("PRAGMA foreign_keys=OFF")
        try:
            conn.execute("BEGIN")
            if snapshot is not None:
                self._load_snapshot(snapshot)
            self._replay_records(log.records(self.log_end, self.seq + 1, acknowledged))
            self.replica.create_triggers(self.catalog)
            self._catalog_dirty = True
            self.save_position()
            conn.execute("COMMIT")
        except BaseException:
            self.replica = old
            raise
        finally:
            conn.execute("PRAGMA foreign_keys=ON")
        if old is not replica:
            old.close()
        self.statement_cache.clear()
        self.cache.clear()

    def _load_snapshot(self, snapshot: Snapshot) -> None:
        sealer = self.keyring.sealer(snapshot.kid)
        catalog = orjson.loads(sealer.open(snapshot.sealed_catalog,
                                           catalog_aad(self.store_id, snapshot.seq),
                                           what="snapshot catalog"))
        self.apply_catalog(catalog)
        try:
            self._insert_snapshot_rows(snapshot, sealer)
        finally:
            snapshot.close()
        self.seq = snapshot.seq

    def _insert_snapshot_rows(self, snapshot: Snapshot, sealer: Any) -> None:
        """A snapshot holds each live row once, as an upsert: its rows go straight to the
        tables' INSERTs in batches, without the merge of final states that log records need
        (the hot loop of a rebuild)."""
        conn = self.replica.conn
        version = snapshot.seq.to_bytes(8, "big")
        prefix = entity_aad(self.store_id, UPSERT, b"", b"", 0)[:-8]  # all but tags, version
        batches: dict[bytes, list[tuple]] = {}
        pending = 0
        tags = self.tags
        loads = orjson.loads
        for entry in snapshot.entries():
            if entry.op != UPSERT:
                raise CorruptStoreError("a snapshot entry is not a row")
            table = tags.get(entry.table_tag)
            try:
                plain = sealer.open(entry.sealed, prefix + entry.table_tag + entry.key_tag
                                    + version, what="entity")
            except TamperError as exc:
                METRICS["encryption_failures"] += 1
                name = table.name if table else "(dropped table)"
                raise TamperError(f"{exc} (table {name!r}, version {snapshot.seq})") from None
            if table is None:
                continue
            rows = batches.get(entry.table_tag)
            if rows is None:
                rows = batches[entry.table_tag] = []
            rows.append(table.row(loads(plain)))
            pending += 1
            if pending >= APPLY_BATCH:
                for tag, batch in batches.items():
                    conn.executemany(tags[tag].insert_sql, batch)
                batches, pending = {}, 0
        for tag, batch in batches.items():
            conn.executemany(tags[tag].insert_sql, batch)

    def open_entry(self, entry: Entry, sealer: Any, version: int) -> EntityChange | None:
        """Authenticate and decode one entity (the hot loop of opening a store)."""
        table = self.tags.get(entry.table_tag)
        aad = entity_aad(self.store_id, entry.op, entry.table_tag, entry.key_tag, version)
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

    # --- catching up ------------------------------------------------------------------------

    def catch_up(self, log: Log, acknowledged: Callable[[], int | None]) -> int:
        """Apply the complete transactions appended to ``log`` since our position, in one
        replica transaction (triggers off: their effects are in the log); returns how many
        records. On failure the replica is rolled back and the caller must rebuild."""
        if not log.has_data_at(self.log_end):
            return 0
        conn = self.replica.conn
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("BEGIN")
        try:
            triggers = self.replica.drop_triggers()
            applied = self._replay_records(log.records(self.log_end, self.seq + 1, acknowledged))
            if self._catalog_dirty:  # the catalog replayed names the triggers now
                self.replica.create_triggers(self.catalog)
            else:
                for sql in triggers:
                    self.replica.conn.execute(sql)
            self.save_position()
            conn.execute("COMMIT")
        except BaseException:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.execute("PRAGMA foreign_keys=ON")
        return applied

    def _replay_records(self, records: Iterator[Record]) -> int:
        """Feed whole transactions to the replica; a transaction's records apply only together."""
        batch = _Batch(self)
        waiting: list[Record] = []  # records of a transaction whose last record is not seen yet
        applied = 0
        for record in records:
            waiting.append(record)
            if record.flags & CONTINUED:
                continue
            for part in waiting:
                batch.feed(part)
            applied += len(waiting)
            self.committed(start=self.log_end, first_seq=waiting[0].seq, seq=record.seq,
                           end=record.end)
            waiting = []
        batch.flush()
        return applied


class _Batch:
    """Applies decrypted entities in merged batches: one write per final row state."""

    def __init__(self, replayer: Replayer) -> None:
        self.replayer = replayer
        self.pending: dict[tuple[str, bytes], EntityChange] = {}

    def flush(self) -> None:
        self.replayer.replica.apply(self.pending)
        self.pending = {}

    def feed(self, record: Record) -> None:
        replayer = self.replayer
        sealer = replayer.keyring.sealer(record.kid)
        METRICS["records_replayed"] += 1
        for entry in decode_entries(record.payload, what=f"log record {record.seq}"):
            if entry.op == CATALOG:
                self.flush()
                catalog = orjson.loads(sealer.open(
                    entry.sealed, catalog_aad(replayer.store_id, record.seq),
                    what=f"catalog in log record {record.seq}"))
                replayer.apply_catalog(catalog)
            elif entry.op == RESET:
                self.flush()
                table = replayer.tags.get(entry.table_tag)
                if table is not None:
                    replayer.replica.apply({}, reset_tables=[table.name])
                    replayer.cache.discard_table(table.name)
            else:
                change = replayer.open_entry(entry, sealer, record.seq)
                if change is not None:
                    self.pending[(change.table.name, entry.key_tag)] = change
                    replayer.cache.discard((change.table.name, entry.key_tag))
        if len(self.pending) >= APPLY_BATCH:  # bounded memory; records are whole states
            self.flush()
