"""A PEP 249 (DB-API 2.0) driver for DeltaDB stores.

It behaves like the standard library's ``sqlite3`` where SQLAlchemy relies on
it (qmark parameters, lazy BEGIN, ``isolation_level``, exception classes,
``create_function``), over the store's shared in-memory replica (apsw).

A transaction starts at the first statement other than a PRAGMA, holds the
store until ``commit()``/``rollback()``, and is made durable by the store at
commit. Statements' column descriptions are cached by SQL text (they are the
shim's main per-query cost otherwise) and forgotten whenever the schema moves.
"""

from __future__ import annotations

import datetime
import decimal
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import apsw

from deltadb_dialect import errors as store_errors
from deltadb_dialect.group_commit import GroupCommit
from deltadb_dialect.keys import resolve_source
from deltadb_dialect.registry import connect_store, disconnect_store
from deltadb_dialect.replica import Capture
from deltadb_dialect.replica_file import DEFAULT_CACHE_MB
from deltadb_dialect.store import SEAL_AHEAD_ROWS, ConstraintViolation, Store, StoreOptions

apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"
sqlite_version_info = tuple(int(p) for p in apsw.sqlite_lib_version().split("."))
sqlite_version = apsw.sqlite_lib_version()
version_info = (1, 0, 0)
version = "1.0.0"


class Warning(Exception):  # noqa: A001 - the name PEP 249 requires
    pass


class Error(Exception):
    pass


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class SerializationFailure(OperationalError):
    """Another process or host changed what the transaction read before it wrote; nothing
    was written. Run the whole transaction again (PostgreSQL's SQLSTATE for the same case)."""

    sqlstate = "40001"


class LockNotAvailable(OperationalError):
    """The transaction would have waited for the store, in a block that asked it not to
    (``GroupCommit.not_waiting``); nothing was written. PostgreSQL's SQLSTATE for NOWAIT."""

    sqlstate = "55P03"


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


Binary = bytes
Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
STRING, BINARY, NUMBER, DATETIME, ROWID = str, bytes, float, datetime.datetime, int

# apsw exception class -> DB-API class, as the standard library's sqlite3 maps SQLite codes.
_APSW_ERRORS: dict[type[BaseException], type[Error]] = {
    apsw.ConstraintError: IntegrityError,
    apsw.MismatchError: IntegrityError,
    apsw.TooBigError: DataError,
    apsw.RangeError: ProgrammingError,
    apsw.BindingsError: ProgrammingError,
    apsw.SQLError: OperationalError,
    apsw.BusyError: OperationalError,
    apsw.LockedError: OperationalError,
    apsw.AbortError: OperationalError,
    apsw.ReadOnlyError: OperationalError,
    apsw.InterruptError: OperationalError,
    apsw.FullError: OperationalError,
    apsw.ConnectionClosedError: ProgrammingError,
    apsw.CursorClosedError: ProgrammingError,
    apsw.ExecutionCompleteError: ProgrammingError,
    apsw.MisuseError: ProgrammingError,
    apsw.SchemaChangeError: OperationalError,
}

_STORE_ERRORS: dict[type[BaseException], type[Error]] = {
    ConstraintViolation: IntegrityError,
    store_errors.SchemaViolationError: IntegrityError,
    store_errors.SerializationError: SerializationFailure,
    store_errors.LockNotAvailableError: LockNotAvailable,
    store_errors.LockTimeoutError: OperationalError,
    store_errors.StorageFullError: OperationalError,
    store_errors.KeyMissingError: OperationalError,
    store_errors.WrongKeyError: OperationalError,
    store_errors.TamperError: DatabaseError,
    store_errors.CorruptStoreError: DatabaseError,
    store_errors.UnsupportedSchemaError: NotSupportedError,
    store_errors.StoreError: OperationalError,
}

_PREFIX = re.compile(r"^\w+Error: ")
_TXN_CONTROL = re.compile(
    r"^\s*(?:(BEGIN)(?:\s+(?:DEFERRED|IMMEDIATE|EXCLUSIVE))?(?:\s+TRANSACTION)?"
    r"|(COMMIT|END)(?:\s+TRANSACTION)?|(ROLLBACK)(?:\s+TRANSACTION)?)\s*;?\s*$",
    re.IGNORECASE,
)
_FOREIGN_KEYS = re.compile(r"^\s*PRAGMA\s+(?:main\.)?foreign_keys\s*=\s*(\w+)", re.IGNORECASE)
_OUTSIDE_TRANSACTION = ("PRAGMA", "VACUUM")
_COMMENT = re.compile(r"--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)
_STORED_PRAGMA = re.compile(r"^\s*PRAGMA\s+(?:main\.)?(?:user_version|application_id)\s*[=(]",
                            re.IGNORECASE)
_VACUUM_INTO = re.compile(r"^\s*VACUUM\b.*\bINTO\b", re.IGNORECASE | re.DOTALL)
_DROPS_TABLES = re.compile(r"\b(?:DROP|ALTER)\b", re.IGNORECASE)
_ROWCOUNT_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# Statements that never write: they run while the store is held, without BEGIN.
_READ_ONLY_STATEMENTS = ("SELECT",)
# A statement beginning with WITH writes only if one of these words appears in it (a word in
# a string literal only costs the statement a replica transaction it did not need).
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def translate(exc: BaseException) -> Error:
    """The DB-API exception for an apsw or store exception, keeping SQLite's message."""
    for kind, target in {**_APSW_ERRORS, **_STORE_ERRORS}.items():
        if isinstance(exc, kind):
            return target(_PREFIX.sub("", str(exc)))
    if isinstance(exc, apsw.Error):
        return DatabaseError(_PREFIX.sub("", str(exc)))
    if isinstance(exc, TypeError):
        return InterfaceError(f"Error binding parameter: {exc}")
    if isinstance(exc, OverflowError):
        return DataError(f"Python int too large to convert to SQLite INTEGER: {exc}")
    return InterfaceError(str(exc))


def _convert_binding(cursor: apsw.Cursor, num: int, value: Any) -> Any:
    """Bindings apsw lacks but sqlite3 users expect (sqlite3's default adapters)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"type {type(value).__name__!r} is not supported (parameter {num})")


# SQL text -> (transaction-control match or None, first word): statements repeat, so
# each text is classified once. Bounded: cleared when it grows past the limit.
_CLASSIFIED: dict[str, tuple[re.Match[str] | None, str]] = {}
_CLASSIFIED_LIMIT = 4096


def _classify(sql: str) -> tuple[re.Match[str] | None, str]:
    found = _CLASSIFIED.get(sql)
    if found is None:
        if len(_CLASSIFIED) >= _CLASSIFIED_LIMIT:
            _CLASSIFIED.clear()
        word = _first_word(sql)
        if word == "WITH" and not _WRITES.search(sql):
            word = "SELECT"  # a query with common table expressions reads only
        found = _CLASSIFIED[sql] = (_TXN_CONTROL.match(sql), word)
    return found


def _first_word(sql: str) -> str:
    text = sql.lstrip()
    while text.startswith(("--", "/*")):
        end = text.find("\n") if text.startswith("--") else text.find("*/") + 1
        text = text[end + 1:].lstrip() if end > 0 else ""
    return text[:8].split(None, 1)[0].upper() if text else ""


LOCKING = ("first_statement", "first_write")


def connect(
    database: str,
    *,
    passphrase: str | None = None,
    key_file: str | None = None,
    timeout: float = 30.0,
    isolation_level: str | None = "",
    cache_size: int = 1024,
    cache_ttl: float = 300.0,
    checkpoint_bytes: int = 64 * 1024 * 1024,
    replica_cache_mb: float = DEFAULT_CACHE_MB,
    create: bool = True,
    storage: str | None = None,
    wal_thread: bool = True,
    locking: str | None = None,
    **_ignored: Any,
) -> Connection:
    """Open (creating if needed) the store at ``database`` and return a connection.

    ``locking``: when a transaction takes the store's writer lock. ``"first_statement"``
    (the default for a store on a directory): every transaction holds it from its first
    statement, so a read-modify-write never fails. ``"first_write"`` (the default, and the
    only choice that lets readers on other hosts go on, for a store in PostgreSQL): a
    transaction that begins with a read reads a snapshot without it and takes it at its
    first write; if another process or host changed what it read by then, that write fails
    with SerializationFailure (SQLSTATE 40001), nothing is written, and the transaction is
    to be run again from its start."""
    if locking not in (None, *LOCKING):
        raise ProgrammingError(
            f"locking must be one of {', '.join(LOCKING)}, not {locking!r}")
    try:
        source = resolve_source(passphrase=passphrase, key_file=key_file)
        options = StoreOptions(timeout=timeout, checkpoint_bytes=checkpoint_bytes, create=create,
                               cache_size=cache_size, cache_ttl=cache_ttl,
                               replica_cache_mb=replica_cache_mb, storage=storage,
                               wal_thread=wal_thread)
        store = connect_store(database, source, options)
    except (store_errors.StoreError, apsw.Error) as exc:
        raise translate(exc) from exc
    except OSError as exc:
        raise OperationalError(f"unable to open the store at {database}: {exc.strerror}") from exc
    if locking is None:
        locking = "first_write" if storage else "first_statement"
    return Connection(store, timeout=timeout, isolation_level=isolation_level,
                      lock_at_first_write=locking == "first_write")


class Connection:
    """One DB-API connection; all connections of a process to a store share its replica."""

    # PEP 249's optional extension, as sqlite3 has it: the exceptions on the connection.
    Warning, Error, InterfaceError, DatabaseError = Warning, Error, InterfaceError, DatabaseError
    DataError, OperationalError, IntegrityError = DataError, OperationalError, IntegrityError
    InternalError, ProgrammingError = InternalError, ProgrammingError
    NotSupportedError = NotSupportedError

    def __init__(self, store: Store, *, timeout: float, isolation_level: str | None,
                 lock_at_first_write: bool = False) -> None:
        self._store: Store | None = store
        self._timeout = timeout
        self._lock_at_first_write = lock_at_first_write
        self.isolation_level = isolation_level
        self._holding = False  # this connection holds the store (a transaction is open)
        # What the transaction read before its first write: (sql, parameters, rows) each, so
        # that a store shared by hosts can check them again when it takes the write lock.
        self._reads: list[tuple[str, Any, list[Any]]] = []
        self._begun = False  # the replica transaction has begun (at the first write)
        self._explicit = False  # opened by an explicit BEGIN (matters in autocommit mode)
        self._capture: Capture | None = None  # the write transaction's changed rows
        self._schema_version = 0
        self._foreign_keys = True
        # This transaction changed the schema: a ROLLBACK (TO) can undo it, so no
        # statement description is cached until the transaction ends.
        self._schema_changed = False
        self._apsw_cursor: apsw.Cursor | None = None  # reused: every result is fetched at once
        # the replica connection that cursor belongs to (a rebuilt replica closes the old one,
        # whose cursors then refuse even to name their connection)
        self._cursor_conn: apsw.Connection | None = None

    # --- PEP 249 ---------------------------------------------------------------------

    def cursor(self) -> Cursor:
        self._require_open()
        return Cursor(self)

    def commit(self) -> None:
        if not self._holding:
            self._require_open()
            return
        if not self._begun:  # read only: nothing to write, no replica transaction to end
            self._end()
            return
        store = self._live_store()
        try:
            capture, self._capture = self._capture, None
            if capture is not None:
                store.commit(capture, self._schema_version, foreign_keys=self._foreign_keys)
        except BaseException as exc:
            # A failed commit wrote nothing: undo the replica so it matches the store.
            self._rollback_quietly(store)
            self._end()
            if isinstance(exc, store_errors.StoreError | apsw.Error):
                raise translate(exc) from exc
            raise
        self._end()

    def rollback(self) -> None:
        if not self._holding:
            self._require_open()
            return
        if not self._begun:  # read only: no replica transaction, nothing captured
            self._end()
            return
        store = self._live_store()
        try:
            capture, self._capture = self._capture, None
            store.rollback(capture, foreign_keys=self._foreign_keys)
        except apsw.Error as exc:
            raise translate(exc) from exc
        finally:
            self._end()

    def close(self) -> None:
        if self._store is None:
            return
        if self._holding:
            try:
                self.rollback()
            except Error:
                pass
        store, self._store = self._store, None
        disconnect_store(store)

    # --- sqlite3 conveniences SQLAlchemy and applications use ---------------------------

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any) -> Cursor:
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, script: str) -> Cursor:
        return self.cursor().executescript(script)

    def create_function(self, name: str, narg: int, func: Callable[..., Any], *,
                        deterministic: bool = False) -> None:
        self._live_store().register_function(name, narg, func, deterministic=deterministic)

    def group_commit(self) -> GroupCommit:
        """The store's group commit handle (see ``deltadb_dialect.group_commit``)."""
        return GroupCommit(self._live_store())

    @property
    def in_transaction(self) -> bool:
        return self._holding

    @property
    def store(self) -> Store:
        return self._live_store()

    # --- internals ---------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._store is None:
            raise ProgrammingError("Cannot operate on a closed database.")

    def _live_store(self) -> Store:
        if self._store is None:
            raise ProgrammingError("Cannot operate on a closed database.")
        return self._store

    def _begin(self, write: bool = True) -> None:
        """Take the store for this connection's transaction (lock, catch up)."""
        store = self._live_store()
        try:
            store.acquire(self._timeout, write=write or not self._lock_at_first_write)
        except store_errors.StoreError as exc:
            raise translate(exc) from exc
        self._holding = True
        if store.lock.checks_reads:  # other connections of this thread read into it too
            store.reads_before_write = self._reads

    def _open_replica_transaction(self) -> None:
        """BEGIN and start capturing changes: deferred to the first statement that may write,
        so read-only transactions (most of them) cost no capture session at all."""
        try:
            store = self._live_store()
            store.reads_before_write = None  # from here on, the write lock holds what it read
            if store.lock_for_write():
                self._check_reads()
            self._capture, self._schema_version = self._live_store().begin(
                foreign_keys=self._foreign_keys)
        except BaseException as exc:
            self._end()
            raise translate(exc) from exc
        self._begun = True

    def _check_reads(self) -> None:
        """Other processes or hosts committed between this transaction's start and its first
        write, and the store caught up with them: every read made so far must return the same
        rows, or what the transaction writes may rest on a past state (a lost update)."""
        conn = self._live_store().replica.conn
        cursor = conn.cursor()
        cursor.convert_binding = _convert_binding
        for sql, parameters, rows in self._reads:
            if cursor.execute(sql, parameters).fetchall() != rows:
                raise store_errors.SerializationError(
                    "could not serialize access: another process changed rows this "
                    "transaction read before it wrote; nothing was written, try again")
        self._reads = []

    def _note_read(self, sql: str, parameters: Any, cursor: Any) -> None:
        """Keep a read made before the first write, only where the store checks them again
        (a store held from the first read needs none, and keeps no rows alive)."""
        if not self._begun and self._live_store().lock.checks_reads:
            self._reads.append((sql, parameters, cursor._rows))

    def _end(self) -> None:
        self._reads = []
        if self._store is not None and self._holding:
            self._store.reads_before_write = None
        self._holding = False
        self._begun = False
        self._explicit = False
        self._schema_changed = False
        self._capture = None
        if self._store is not None:
            self._store.release()

    def _rollback_quietly(self, store: Store) -> None:
        try:
            store.rollback(None, foreign_keys=self._foreign_keys)
        except apsw.Error:
            store.mark_for_rebuild()

    def _run(self, cursor: Cursor, sql: str, parameters: Any, many: bool) -> None:
        """Execute one statement with sqlite3's transaction rules."""
        if self._holding:  # the common case first: a statement inside the transaction
            control, word = _classify(sql)
            if control is None:
                if not self._begun and word not in _READ_ONLY_STATEMENTS:
                    self._open_replica_transaction()
                if many or not self._execute_described(cursor, sql, parameters, word):
                    self._execute(cursor, sql, parameters, many, word)
                if self._capture is not None and word not in _READ_ONLY_STATEMENTS:
                    self._after_write(sql)
                self._note_read(sql, parameters, cursor)
                if word == "PRAGMA":
                    self._note_stored_pragma(sql)
                if self.isolation_level is None and not self._explicit:
                    self.commit()
                return
        self._require_open()
        control, word = _classify(sql)
        if control:
            self._transaction_control(control)
            cursor._set_result(None, [], -1)
            return
        if not self._holding and self._live_store().held_by_this_thread():
            self._execute(cursor, sql, parameters, many, word, guest=True)
            reads = self._live_store().reads_before_write
            if reads is not None and not many:  # checked with the holder's own reads
                reads.append((sql, parameters, cursor._rows))
            return
        if not self._holding and word == "PRAGMA" and _STORED_PRAGMA.match(sql):
            self._run_stored_pragma(cursor, sql, parameters)
            return
        if not self._holding and word in _OUTSIDE_TRANSACTION:
            self._run_outside_transaction(cursor, sql, parameters, word)
            return
        if not self._holding:
            self._begin(write=word not in _READ_ONLY_STATEMENTS)
        if not self._begun and word not in _READ_ONLY_STATEMENTS:
            self._open_replica_transaction()
        if many or not self._execute_described(cursor, sql, parameters, word):
            self._execute(cursor, sql, parameters, many, word)
        if self._capture is not None and word not in _READ_ONLY_STATEMENTS:
            self._after_write(sql)
        self._note_read(sql, parameters, cursor)
        if self.isolation_level is None and not self._explicit:
            self.commit()

    def _after_write(self, sql: str) -> None:
        """After a statement that may have written: seal a big transaction's rows so far
        (its COMMIT then has less to do), unless the statement may have undone sealed rows."""
        capture = self._capture
        assert capture is not None
        if capture.ahead is not None and "ROLLBACK" in sql.upper():
            capture.stale = True  # ROLLBACK TO: rows sealed ahead may be back as they were
        elif capture.pending() >= SEAL_AHEAD_ROWS:
            self._live_store().seal_ahead(capture, self._schema_version)

    def _transaction_control(self, control: re.Match[str]) -> None:
        if control.group(1):
            if self._holding and self._explicit:
                raise OperationalError("cannot start a transaction within a transaction")
            if not self._holding:
                self._begin()
            if not self._begun:
                self._open_replica_transaction()
            self._explicit = True
        elif control.group(2):
            self.commit()
        else:
            self.rollback()

    def _note_stored_pragma(self, sql: str) -> None:
        if self._capture is not None and _STORED_PRAGMA.match(sql):
            self._capture.pragmas_changed = True

    def _run_stored_pragma(self, cursor: Cursor, sql: str, parameters: Any) -> None:
        """``PRAGMA user_version = N`` (or application_id) outside a transaction: sqlite3
        runs it in autocommit, so here it is a transaction of its own, whose commit writes
        the value into the store's catalog."""
        self._begin()
        try:
            self._open_replica_transaction()
            self._execute(cursor, sql, parameters, False, "PRAGMA")
            self._note_stored_pragma(sql)
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def _run_outside_transaction(self, cursor: Cursor, sql: str, parameters: Any,
                                 word: str) -> None:
        setting = _FOREIGN_KEYS.match(sql)
        if setting:
            # The replica is shared: keep this connection's setting and apply it to its
            # own transactions (SQLite itself ignores this pragma inside a transaction).
            self._foreign_keys = setting.group(1).upper() in ("1", "ON", "TRUE", "YES")
            cursor._set_result(None, [], -1)
            return
        store = self._live_store()
        # A pragma that only asks (no "=") reads, and may read a snapshot like a SELECT.
        asks = self._lock_at_first_write and word == "PRAGMA" and "=" not in sql
        try:
            store.acquire(self._timeout, write=not asks)
        except store_errors.StoreError as exc:
            raise translate(exc) from exc
        try:
            if sql.lstrip().upper().startswith("PRAGMA") and "FOREIGN_KEYS" in sql.upper():
                cursor._set_result((("foreign_keys", None, None, None, None, None, None),),
                                   [(int(self._foreign_keys),)], -1)
                return
            if _first_word(sql) == "VACUUM":
                self._vacuum(store, sql)
                cursor._set_result(None, [], -1)
                return
            self._execute(cursor, sql, parameters, False, _first_word(sql))
        finally:
            store.release()

    @staticmethod
    def _vacuum(store: Store, sql: str) -> None:
        """VACUUM compacts the store (a checkpoint), never the in-memory replica: there it
        would renumber the rowids of tables without an INTEGER PRIMARY KEY, which are those
        rows' keys in the store. VACUUM INTO would write the plaintext to a file."""
        if _VACUUM_INTO.match(sql):
            raise NotSupportedError(
                "VACUUM INTO would write the database unencrypted to a file; use "
                "'python -m deltadb_dialect backup' for an encrypted copy of the store")
        try:
            store.checkpoint()
        except store_errors.StoreError as exc:
            raise translate(exc) from exc

    def _execute(self, cursor: Cursor, sql: str, parameters: Any, many: bool, word: str,
                 guest: bool = False) -> None:
        """Run a statement on the replica.

        A guest is a connection used while another connection of the same thread
        holds the store (code that reads through a second connection in the middle
        of a session). Waiting would deadlock that thread, so a guest may read, in
        the holder's transaction, but not write.
        """
        store = self._live_store()
        conn = store.replica.conn
        apsw_cursor = self._apsw_cursor
        if apsw_cursor is None or self._cursor_conn is not conn:  # new, or replica rebuilt
            apsw_cursor = self._apsw_cursor = conn.cursor()
            self._cursor_conn = conn
            apsw_cursor.convert_binding = _convert_binding
        described = None if guest else store.statement_cache.get(sql)  # (description,)
        try:
            if described is None:
                captured: list[Any] = [None]

                def trace(c: apsw.Cursor, _sql: str, _bindings: Any) -> bool:
                    captured[0] = c.get_description()
                    return c.is_readonly or not guest

                apsw_cursor.exec_trace = trace
            # A statement that may drop, rename or alter tables (DROP or ALTER first, or
            # somewhere in a string of several statements) runs with the replica noting which:
            # a table dropped and created again with the same SQL must not keep its old rows
            # in the store. Such text is never cached, so it always comes here.
            drops = (self._capture is not None and not guest
                     and (word in ("DROP", "ALTER") or (";" in sql and _DROPS_TABLES.search(sql)))
                     and store.replica.following_drops(self._capture))
            with drops or nullcontext():
                if many:
                    rowcount = self._execute_many(conn, apsw_cursor, sql, parameters, word)
                    rows: list[Any] = []
                else:
                    # Not described yet (new text, or the schema moved): prepare afresh.
                    # apsw's cached statement would describe the old schema until its first
                    # step.
                    rows = apsw_cursor.execute(sql, parameters,
                                               can_cache=described is not None).fetchall()
                    rowcount = conn.changes() if word in _ROWCOUNT_STATEMENTS else -1
        except apsw.ExecTraceAbort:
            raise OperationalError(
                "database is locked: another connection in this thread has an open "
                "transaction; commit or close it before writing"
            ) from None
        except (apsw.Error, TypeError, OverflowError) as exc:
            _note_damage(store, exc)
            raise translate(exc) from exc
        finally:
            if described is None:
                apsw_cursor.exec_trace = None
        if described is None:
            description = _describe(captured[0])
            if word in ("CREATE", "DROP", "ALTER"):
                store.statement_cache.clear()
                self._schema_changed = self._holding
            elif not (self._schema_changed or many or drops):
                # (executemany may use a stale statement; DDL-like text is always watched)
                store.statement_cache[sql] = (description,)
        else:
            description = described[0]
        cursor._set_result(description, rows, rowcount)
        if word in ("INSERT", "REPLACE"):
            cursor.lastrowid = conn.last_insert_rowid()

    def _execute_described(self, cursor: Cursor, sql: str, parameters: Any, word: str) -> bool:
        """``_execute`` for a statement already described (the hot path); False if it is not."""
        store = self._store
        assert store is not None
        described = store.statement_cache.get(sql)
        conn = store.replica.conn
        apsw_cursor = self._apsw_cursor
        if described is None or apsw_cursor is None or self._cursor_conn is not conn:
            return False
        try:
            rows = apsw_cursor.execute(sql, parameters).fetchall()
        except (apsw.Error, TypeError, OverflowError) as exc:
            _note_damage(store, exc)
            raise translate(exc) from exc
        cursor.description = described[0]
        cursor._rows = rows
        cursor._position = 0
        if word in _ROWCOUNT_STATEMENTS:
            cursor.rowcount = conn.changes()
            if word == "INSERT" or word == "REPLACE":
                cursor.lastrowid = conn.last_insert_rowid()
        else:
            cursor.rowcount = -1
        return True

    def _execute_many(self, conn: apsw.Connection, apsw_cursor: apsw.Cursor, sql: str,
                      parameters: Any, word: str) -> int:
        if word == "INSERT" or word not in _ROWCOUNT_STATEMENTS:
            before = conn.total_changes()
            apsw_cursor.executemany(sql, parameters)
            return conn.total_changes() - before if word == "INSERT" else -1
        total = 0
        for params in parameters:  # per row, so rowcount counts matched rows only
            apsw_cursor.execute(sql, params)
            total += conn.changes()
        return total


def _note_damage(store: Store, exc: BaseException) -> None:
    """A replica page failed to authenticate: the statement fails (never a wrong answer) and
    the store rebuilds its replica from the log before the next transaction."""
    if isinstance(exc, apsw.CorruptError | apsw.NotADBError):
        store.mark_for_rebuild()


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, split where SQLite's own completeness test says one ends
    (so semicolons inside strings, comments and trigger bodies do not split)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _has_sql(pending):
                yield pending
            pending = ""
    if _has_sql(pending[:-1]):
        yield pending[:-1]  # a last statement without its semicolon


def _has_sql(text: str) -> bool:
    """Anything but comments, blanks and semicolons."""
    return bool(_COMMENT.sub("", text).strip(" \t\r\n;"))


def _describe(raw: Any) -> tuple | None:
    if not raw:
        return None
    return tuple((name, None, None, None, None, None, None) for name, _decl in raw)


class Cursor:
    """A DB-API cursor; results are fetched eagerly, so it never pins the store."""

    __slots__ = ("connection", "description", "rowcount", "lastrowid", "arraysize", "_rows",
                 "_position", "_closed")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.arraysize = 1
        self.description: tuple | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []
        self._position = 0
        self._closed = False

    def _set_result(self, description: tuple | None, rows: list[Any], rowcount: int) -> None:
        self.description = description
        self._rows = rows
        self._position = 0
        self.rowcount = rowcount

    def _check(self) -> None:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        self.connection._run(self, sql, parameters, False)
        return self

    def executemany(self, sql: str, seq_of_parameters: Any) -> Cursor:
        self._check()
        self.connection._run(self, sql, list(seq_of_parameters), many=True)
        return self

    def executescript(self, script: str) -> Cursor:
        """sqlite3's executescript: commit what is pending, then run the script's statements
        one by one in autocommit mode (each its own transaction, unless the script opens
        one with BEGIN)."""
        self._check()
        if not isinstance(script, str):
            raise ValueError("script argument must be unicode.")
        connection = self.connection
        connection.commit()
        saved, connection.isolation_level = connection.isolation_level, None
        try:
            for statement in _statements(script):
                connection._run(self, statement, (), False)
        finally:
            connection.isolation_level = saved
        return self

    def fetchone(self) -> Any:
        self._check()
        if self._position >= len(self._rows):
            return None
        row = self._rows[self._position]
        self._position += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[Any]:
        self._check()
        count = self.arraysize if size is None else size
        rows = self._rows[self._position:self._position + count]
        self._position += len(rows)
        return rows

    def fetchall(self) -> list[Any]:
        self._check()
        rows = self._rows[self._position:]
        self._position = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        self._closed = True
        self._rows = []

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

