"""The SQLite replica: the query engine over the store's rows.

SQLite (through apsw) runs every query against the replica, an encrypted SQLite
file on this host (``replica_file.py``) that holds the rows; the encrypted log and
snapshots are the system of record.
This module knows the replica's tables, turns a transaction's changes
(captured with SQLite's session extension) into entity documents, and applies
entity documents back (when opening, or catching up with other processes).
"""

from __future__ import annotations

import base64
import math
import operator
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import apsw
import orjson

from deltadb_dialect.errors import UnsupportedSchemaError
from deltadb_dialect.schema import (
    ROWID,
    ColumnInfo,
    RowValidator,
    compile_row_builder,
    table_schema,
)

HIDDEN_PREFIX = "__deltadb_"
# The replica file's own bookkeeping (replica_file.py): in no catalog, never captured.
REPLICA_STATE_TABLE = HIDDEN_PREFIX + "replica_state"
_ODD_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# --- values <-> JSON --------------------------------------------------------------

def encode_value(value: Any) -> Any:
    """SQLite value -> JSON value; exact for every storage class."""
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "$b64" in value:
            return base64.b64decode(value["$b64"])
        return _ODD_FLOATS[value["$float"]]
    return value


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def canonical_key(values: Iterable[Any]) -> bytes:
    if type(values) is tuple and len(values) == 1 and type(values[0]) is int:
        return b"[%d]" % values[0]  # what orjson writes for one 64-bit integer, faster
    return orjson.dumps([encode_value(v) for v in values])


# --- tables -------------------------------------------------------------------------

@dataclass
class TableInfo:
    """What the replica needs to know of one table to capture and apply its rows."""

    name: str
    columns: list[str]
    key_columns: list[str]  # primary key columns, or [ROWID] for tables without one
    create_sql: str
    schema: dict[str, Any]
    validator: RowValidator
    version: int = 1
    # how the capture identifies this table's rows (see Capture): "rowid" (the key is the
    # rowid), "column" (a rowid table keyed by other columns), "key" (WITHOUT ROWID), or
    # "whole" (row values unreadable while changing: the table is re-exported whole)
    capture_mode: str = "whole"
    rowid_name: str = ROWID  # a name of the rowid that no column shadows
    select_sql: str = field(init=False)
    insert_sql: str = field(init=False)
    delete_sql: str = field(init=False)
    key_positions: list[int] = field(init=False)
    key_of_row: Callable[[Any], tuple] = field(init=False)  # a row's primary key values

    def __post_init__(self) -> None:
        self.rowid_key = self.key_columns == [ROWID]
        stored = ([ROWID] if self.rowid_key else []) + self.columns
        column_list = ", ".join(quote(c) for c in stored)
        where = " AND ".join(f"{quote(c)} IS ?" for c in self.key_columns)
        self.select_sql = f"SELECT {column_list} FROM {quote(self.name)} WHERE {where}"
        self.select_all_sql = f"SELECT {column_list} FROM {quote(self.name)}"
        marks = ", ".join("?" for _ in stored)
        # REPLACE: applying a committed state row by row may pass through states where a
        # unique value is still held by a row that the same batch moves or deletes.
        self.insert_sql = (f"INSERT OR REPLACE INTO {quote(self.name)} ({column_list}) "
                           f"VALUES ({marks})")
        self.delete_sql = f"DELETE FROM {quote(self.name)} WHERE {where}"
        self.stored_columns = stored
        self.key_positions = [stored.index(c) for c in self.key_columns]
        getter = operator.itemgetter(*stored)
        self._pick = getter if len(stored) > 1 else (lambda document: (getter(document),))
        key_getter = operator.itemgetter(*self.key_positions)
        self.key_of_row = (key_getter if len(self.key_positions) > 1
                           else (lambda row: (key_getter(row),)))
        # row -> document already known valid, or None (then: document() + validator)
        self.build = compile_row_builder(self.schema, stored)
        # the stored rows of some rowids (sorted, as JSON) or of a range of rowids, for the
        # capture; "column" tables get the rowid first, ahead of the stored columns
        head = f"{quote(self.rowid_name)}, " if self.capture_mode == "column" else ""
        rowid = quote(self.rowid_name)
        self.rows_by_rowid_sql = (f"SELECT {head}{column_list} FROM {quote(self.name)} "
                                  f"WHERE {rowid} IN (SELECT value FROM json_each(?))")
        self.rows_in_range_sql = (f"SELECT {head}{column_list} FROM {quote(self.name)} "
                                  f"WHERE {rowid} BETWEEN ? AND ?")

    def document(self, row: tuple) -> dict[str, Any]:
        kinds = set(map(type, row))
        if bytes in kinds or float in kinds:  # blobs and non-finite floats need encoding
            pairs = zip(self.stored_columns, row, strict=True)
            return {name: encode_value(value) for name, value in pairs}
        return dict(zip(self.stored_columns, row, strict=True))

    def row(self, document: dict[str, Any]) -> tuple:
        try:
            values = self._pick(document)
        except KeyError:  # a column added after this document was written
            values = tuple(map(document.get, self.stored_columns))
        if dict in map(type, values):  # blobs and odd floats are encoded as objects
            return tuple(decode_value(v) for v in values)
        return values

    def key_of_document(self, document: dict[str, Any]) -> tuple:
        return tuple(decode_value(document.get(c)) for c in self.key_columns)


CAPTURE_HOOK = "deltadb-capture"
# Header values kept in the catalog: SQLite keeps them in the database file's header, which
# the replica's is not (``PRAGMA user_version = 3`` must survive a reopen).
STORED_PRAGMAS = ("user_version", "application_id")


class Capture:
    """Which rows a write transaction changed, and each one's key before it.

    SQLite's preupdate hook reports every row change (statements, triggers, foreign-key
    actions, rows that INSERT OR REPLACE deletes); changes that a ROLLBACK TO undoes are
    reported too and simply find their row in its earlier state at commit. Rows are
    followed by rowid (or by primary key in WITHOUT ROWID tables); the first change
    of a row that existed before records its key then, because the row's final state,
    read at commit, may have another key or none (a delete to write).
    """

    __slots__ = ("replica", "rowids", "keys", "whole", "dropped", "pragmas_changed", "_old_key",
                 "ahead", "ahead_seq", "stale", "_sealed_rowids", "_sealed_keys")

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.rowids: dict[str, dict[int, tuple | None]] = {}  # table -> rowid -> key before
        self.keys: dict[str, dict[tuple, tuple | None]] = {}  # WITHOUT ROWID tables: by key
        self.whole: set[str] = set()  # tables to re-export whole
        self.dropped: set[str] = set()  # dropped, renamed or altered: re-exported whole too
        self.pragmas_changed = False  # a stored pragma was set: the catalog is written
        self._old_key: dict[str, Callable[[Any], tuple]] = {}
        # Sealing ahead (a big transaction's rows sealed as its statements write them, see
        # ``Store.seal_ahead``): the records built so far, the sequence number they start at,
        # and every row they cover with its key before the transaction. ``stale``: what was
        # sealed ahead may no longer match the rows (a ROLLBACK TO, DDL, a failed seal); the
        # commit then seals the whole transaction afresh.
        self.ahead: Any = None
        self.ahead_seq = 0
        self.stale = False
        self._sealed_rowids: dict[str, dict[int, tuple | None]] = {}
        self._sealed_keys: dict[str, dict[tuple, tuple | None]] = {}

    def pending(self) -> int:
        """How many rows changed since the last seal (or the start), roughly."""
        return (sum(map(len, self.rowids.values())) + sum(map(len, self.keys.values()))
                if not self.stale else 0)

    def sealed(self, skip: set[str]) -> None:
        """The rows followed so far are sealed (those of ``skip`` excepted): follow anew from
        here, each row's next change noting its key as it is now, so that each sealed step
        holds the changes since the one before and the steps in order give the final state."""
        _move_followed(self.rowids, self._sealed_rowids, skip)
        _move_followed(self.keys, self._sealed_keys, skip)

    def unseal(self) -> None:
        """Forget what was sealed ahead: every row the transaction changed is followed again
        with its key before the transaction, for a commit that seals it all afresh."""
        _restore_followed(self.rowids, self._sealed_rowids)
        _restore_followed(self.keys, self._sealed_keys)
        self.ahead, self.ahead_seq, self.stale = None, 0, False

    def on_change(self, update: Any) -> None:
        """The preupdate hook (hot: every row an INSERT writes comes through here)."""
        seen = self.rowids.get(update.table_name)
        if seen is None or update.database_name != "main":
            self._first_change(update)
            return
        rowid = update.rowid
        op = update.op
        if rowid not in seen:
            if op == "INSERT":
                seen[rowid] = None
            else:
                try:
                    seen[rowid] = self._old_key[update.table_name](update)
                except Exception:  # noqa: BLE001 - see _unreadable
                    self._unreadable(update.table_name)
                    return
        if op == "UPDATE":
            new = update.rowid_new
            if new != rowid and new not in seen:
                seen[new] = None

    def _first_change(self, update: Any) -> None:
        """A change to a table not followed by rowid yet: decide how to follow it."""
        name = update.table_name
        table = self.replica.tables.get(name)
        if update.database_name != "main" or table is None:
            return  # a temporary table, or one the commit exports whole (created, altered)
        mode = table.capture_mode
        if mode == "whole":
            self.whole.add(name)
        elif mode == "key":
            try:
                self._by_key(table, update)
            except Exception:  # noqa: BLE001 - see _unreadable
                self._unreadable(name)
        else:
            if mode == "rowid":
                self._old_key[name] = lambda u: (u.rowid,)
            else:
                pick = operator.itemgetter(*table.key_positions)
                one = len(table.key_positions) == 1
                self._old_key[name] = ((lambda u: (pick(u.old),)) if one
                                       else (lambda u: pick(u.old)))
            self.rowids[name] = {}
            self.on_change(update)

    def _unreadable(self, name: str) -> None:
        """A row's values did not fit the table's known shape (DDL earlier in the same
        transaction): export the table whole rather than fail the user's statement, which
        is what an exception in the hook would do."""
        self.whole.add(name)

    def _by_key(self, table: TableInfo, update: Any) -> None:
        seen = self.keys.setdefault(table.name, {})
        op = update.op
        new = table.key_of_row(update.new) if op != "DELETE" else None
        if op != "INSERT":
            old = table.key_of_row(update.old)
            if old not in seen:
                seen[old] = old
        if new is not None and new not in seen:
            seen[new] = None

    def changed_rows(self, table: TableInfo) -> tuple[list[tuple], list[tuple]]:
        """(keys to delete, current rows to write) of one followed table, read now."""
        conn = self.replica.conn
        if table.capture_mode == "key":
            seen = self.keys[table.name]
            if not seen:
                return [], []
            rows = [found[0] for key in seen
                    if (found := conn.execute(table.select_sql, key).fetchall())]
            current = {table.key_of_row(row): row for row in rows}
            gone = [old for key, old in seen.items() if old is not None and key not in current]
            return gone, rows
        by_rowid = self.rowids[table.name]
        if not by_rowid:
            return [], []
        low, high = min(by_rowid), max(by_rowid)
        if high - low + 1 == len(by_rowid):  # one range (what inserts make): no id list
            fetched = conn.execute(table.rows_in_range_sql, (low, high)).fetchall()
        else:
            ids = orjson.dumps(sorted(by_rowid)).decode()
            fetched = conn.execute(table.rows_by_rowid_sql, (ids,)).fetchall()
        if table.capture_mode == "column":
            rowids, rows = [row[0] for row in fetched], [row[1:] for row in fetched]
        else:
            rows = fetched
            position = table.key_positions[0]
            rowids = [row[position] for row in rows]
        olds = [(rowid, old) for rowid, old in by_rowid.items() if old is not None]
        if not olds:  # only new rows (inserts): nothing can have been deleted
            return [], rows
        keys_now = dict(zip(rowids, map(table.key_of_row, rows), strict=True))
        return [old for rowid, old in olds if keys_now.get(rowid) != old], rows


_Row = TypeVar("_Row", int, tuple)


def _move_followed(current: dict[str, dict[_Row, tuple | None]],
                   sealed: dict[str, dict[_Row, tuple | None]], skip: set[str]) -> None:
    for name in list(current):
        if name in skip:
            continue
        done = sealed.setdefault(name, {})
        for row, before in current[name].items():
            done.setdefault(row, before)  # the first (oldest) key is the one before
        current[name] = {}


def _restore_followed(current: dict[str, dict[_Row, tuple | None]],
                      sealed: dict[str, dict[_Row, tuple | None]]) -> None:
    for name, done in sealed.items():
        current[name] = {**current.get(name, {}), **done}  # the older key wins
    sealed.clear()


@dataclass(slots=True)
class EntityChange:
    table: TableInfo
    key: tuple
    document: dict[str, Any] | None  # None: the row was deleted


class Replica:
    """One SQLite database (the replica file, or memory) and the metadata of its tables."""

    def __init__(self, conn: apsw.Connection | None = None) -> None:
        self.conn = conn if conn is not None else apsw.Connection(":memory:")
        self.conn.execute("PRAGMA foreign_keys=ON")
        # Query planner stability: plans never depend on bound values. Without it, this
        # SQLite (STAT4 enabled) marks a statement such as "... WHERE x = ? ORDER BY y"
        # to be prepared again whenever a parameter is bound, so every execution from the
        # statement cache parsed and planned the SQL anew (about 40% of a paged query).
        self.conn.config(apsw.SQLITE_DBCONFIG_ENABLE_QPSG, 1)
        self.tables: dict[str, TableInfo] = {}
        self.schema_history: dict[str, list[dict[str, Any]]] = {}

    def close(self) -> None:
        self.conn.close()

    # --- catalog (the schema as SQL) -------------------------------------------------

    def catalog_sql(self) -> list[dict[str, str]]:
        """Every schema object, tables first, each as the SQL that recreates it."""
        rows = self.conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            f"AND name != '{REPLICA_STATE_TABLE}' ORDER BY rowid"
        ).fetchall()
        order = {"table": 0, "index": 1, "view": 2, "trigger": 3}
        rows.sort(key=lambda r: order.get(str(r[0]), 4))
        return [{"type": str(t), "name": str(n), "table": str(tn), "sql": str(s)}
                for t, n, tn, s in rows]

    def schema_version(self) -> int:
        # apsw types a value as any SQLite value (None included); PRAGMAs return integers.
        return int(self.conn.execute("PRAGMA schema_version").fetchall()[0][0])  # type: ignore[arg-type]

    def load_catalog(self, catalog: dict[str, Any]) -> None:
        """Recreate the schema of a catalog in an empty replica (no triggers yet)."""
        for item in catalog["objects"]:
            if item["type"] != "trigger":
                self.conn.execute(item["sql"])
        self.schema_history = catalog.get("history", {})
        self.apply_pragmas(catalog)
        self.refresh_tables()

    def stored_pragmas(self) -> dict[str, int]:
        """The database header's values an application sets and expects to keep."""
        # apsw types a value as any SQLite value (None included); these PRAGMAs return integers.
        values = {name: int(self.conn.execute(f"PRAGMA {name}").fetchall()[0][0])  # type: ignore[arg-type]
                  for name in STORED_PRAGMAS}
        return {name: value for name, value in values.items() if value}

    def apply_pragmas(self, catalog: dict[str, Any]) -> None:
        stored = catalog.get("pragmas", {})
        for name in STORED_PRAGMAS:
            self.conn.execute(f"PRAGMA {name} = {int(stored.get(name, 0))}")

    def create_triggers(self, catalog: dict[str, Any]) -> None:
        for item in catalog["objects"]:
            if item["type"] == "trigger":
                self.conn.execute(item["sql"])

    def catalog(self) -> dict[str, Any]:
        catalog = {"objects": self.catalog_sql(), "history": self.schema_history}
        pragmas = self.stored_pragmas()
        if pragmas:  # only then: catalogs of stores that never set one stay as they were
            catalog["pragmas"] = pragmas
        return catalog

    def refresh_tables(self) -> set[str]:
        """Re-read every table's shape; returns the names whose shape changed."""
        objects = {o["name"]: o for o in self.catalog_sql() if o["type"] == "table"}
        changed: set[str] = set(self.tables) - set(objects)
        tables: dict[str, TableInfo] = {}
        for name, item in objects.items():
            old = self.tables.get(name)
            if old is not None and old.create_sql == item["sql"]:
                tables[name] = old
                continue
            tables[name] = self._describe(name, item["sql"])
            changed.add(name)
        self.tables = tables
        return changed

    def _describe(self, name: str, create_sql: str) -> TableInfo:
        info = self.conn.execute(f"PRAGMA table_xinfo({quote(name)})").fetchall()
        # hidden: 0 ordinary, 2/3 generated (never stored by us: SQLite recomputes them)
        # apsw types a value as any SQLite value (None included); pk is always an integer.
        columns = [ColumnInfo(str(n), str(t or ""), bool(nn), int(pk))  # type: ignore[arg-type]
                   for _cid, n, t, nn, _d, pk, hidden in info if hidden == 0]
        pk_columns = [c.name for c in sorted(columns, key=lambda c: c.pk_position) if c.pk_position]
        if not pk_columns and ROWID in {str(column[1]).lower() for column in info}:
            raise UnsupportedSchemaError(
                f"table {name!r} has no primary key and a column named {ROWID!r}: the store "
                f"keys such rows by their rowid, kept under that name; add a primary key or "
                f"rename the column")
        history = self.schema_history.setdefault(name, [])
        version = len(history) + 1
        schema = table_schema(name, columns, create_sql=create_sql,
                              rowid_key=not pk_columns, version=version)
        if history and _same_shape(history[-1], schema):
            version, schema = history[-1]["x-deltadb-version"], history[-1]
        else:
            history.append(schema)
            del history[:-20]  # bounded: old versions matter only for audit
        mode, rowid_name = self._capture_mode(name, info, pk_columns)
        return TableInfo(name=name, columns=[c.name for c in columns],
                         key_columns=pk_columns or [ROWID], create_sql=create_sql,
                         schema=schema, validator=RowValidator(name, schema), version=version,
                         capture_mode=mode, rowid_name=rowid_name)

    def _capture_mode(self, name: str, info: list[Any], pk_columns: list[str]
                      ) -> tuple[str, str]:
        """How Capture follows this table's rows, and a name of its rowid (TableInfo)."""
        listed = self.conn.execute("SELECT wr FROM pragma_table_list WHERE schema = 'main' "
                                   "AND name = ?", (name,)).fetchall()
        without_rowid = bool(listed and listed[0][0])
        hidden = any(column[6] for column in info)  # generated: unreadable in the hook
        if without_rowid:
            return ("whole" if hidden else "key"), ROWID
        shadowed = {str(column[1]).lower() for column in info}
        free = [alias for alias in (ROWID, "rowid", "oid") if alias not in shadowed]
        if not free or (not pk_columns and free[0] != ROWID):
            return "whole", ROWID
        pk_index = self.conn.execute(f"SELECT 1 FROM pragma_index_list({_literal(name)}) "
                                     "WHERE origin = 'pk'").fetchall()
        if not pk_columns or (not pk_index and len(pk_columns) == 1):
            return "rowid", free[0]  # no primary key, or INTEGER PRIMARY KEY: the rowid
        return ("whole" if hidden else "column"), free[0]

    # --- capture ---------------------------------------------------------------------

    def start_capture(self) -> Capture:
        """Follow the rows that the transaction about to begin changes (until ``stop``)."""
        capture = Capture(self)
        self.conn.preupdate_hook(capture.on_change, id=CAPTURE_HOOK)
        return capture

    def stop_capture(self) -> None:
        self.conn.preupdate_hook(None, id=CAPTURE_HOOK)

    @contextmanager
    def following_drops(self, capture: Capture) -> Iterator[None]:
        """Note in ``capture`` every table the statements run meanwhile drop or alter.

        DDL fires no row hook, and a table dropped and created again with the same SQL
        looks unchanged at commit. SQLite's authorizer names each table as each statement
        is prepared; installing it expires every cached statement, so cached DDL is
        prepared (and named) again too. DDL changes the schema anyway, which expires them.
        """
        def authorize(action: int, first: str | None, second: str | None,
                      database: str | None, _trigger: str | None) -> int:
            if action == apsw.SQLITE_DROP_TABLE and database == "main" and first:
                capture.dropped.add(first)
            elif action == apsw.SQLITE_ALTER_TABLE and first == "main" and second:
                capture.dropped.add(second)
            return apsw.SQLITE_OK

        self.conn.authorizer = authorize
        try:
            yield
        finally:
            self.conn.authorizer = None

    def export_table(self, table: TableInfo) -> Iterator[EntityChange]:
        for row in self.conn.execute(table.select_all_sql):
            yield EntityChange(table, table.key_of_row(row), table.document(row))

    # --- apply -----------------------------------------------------------------------

    def apply(self, changes: dict[tuple[str, bytes], EntityChange],
              reset_tables: Iterable[str] = ()) -> None:
        """Write the final state of a set of entities (caller holds a transaction, FKs off)."""
        for name in reset_tables:
            if name in self.tables:
                self.conn.execute(f"DELETE FROM {quote(name)}")
        by_table: dict[str, list[EntityChange]] = {}
        for change in changes.values():
            by_table.setdefault(change.table.name, []).append(change)
        for name, table_changes in by_table.items():
            table = self.tables[name]
            deleted = [c.key for c in table_changes if c.document is None]
            if deleted:
                self.conn.executemany(table.delete_sql, deleted)
            rows = [table.row(c.document) for c in table_changes if c.document is not None]
            if rows:
                self.conn.executemany(table.insert_sql, rows)

    def trigger_sql(self) -> list[str]:
        return [o["sql"] for o in self.catalog_sql() if o["type"] == "trigger"]

    def drop_triggers(self) -> list[str]:
        """Drop triggers while replaying (their effects are already in the log)."""
        triggers = [o for o in self.catalog_sql() if o["type"] == "trigger"]
        for trigger in triggers:
            self.conn.execute(f"DROP TRIGGER {quote(trigger['name'])}")
        return [t["sql"] for t in triggers]


def _same_shape(old: dict[str, Any], new: dict[str, Any]) -> bool:
    strip = ("$id", "x-deltadb-version")
    return {k: v for k, v in old.items() if k not in strip} == {
        k: v for k, v in new.items() if k not in strip
    }


def sync_catalog(replica: Replica, catalog: dict[str, Any]) -> set[str]:
    """Bring a live replica's schema to a catalog's (triggers excluded); returns changed tables.

    Objects whose SQL is unchanged are kept with their rows; changed or new
    tables are created empty (their rows follow in the same log record).
    """
    current = {(o["type"], o["name"]): o["sql"] for o in replica.catalog_sql()
               if o["type"] != "trigger"}
    target = {(o["type"], o["name"]): o["sql"] for o in catalog["objects"]
              if o["type"] != "trigger"}
    drop_order = {"view": 0, "index": 1, "table": 2}
    for kind, name in sorted(current, key=lambda k: drop_order.get(k[0], 3)):
        if target.get((kind, name)) != current[(kind, name)]:
            replica.conn.execute(f"DROP {kind.upper()} IF EXISTS {quote(name)}")
    remaining = {(o["type"], o["name"]): o["sql"] for o in replica.catalog_sql()}
    for item in catalog["objects"]:
        key = (item["type"], item["name"])
        if item["type"] != "trigger" and remaining.get(key) != target[key]:
            replica.conn.execute(item["sql"])
    replica.schema_history = catalog.get("history", {})
    replica.apply_pragmas(catalog)
    return replica.refresh_tables()
