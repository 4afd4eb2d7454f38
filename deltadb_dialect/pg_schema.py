"""The store's tables in PostgreSQL, and connecting to them with one-sentence errors.

PostgreSQL holds exactly what a store directory holds, as opaque bytes: the sealed
header (the ``store.hdr`` document), each log's file header, the sealed records one row
each, the snapshots in parts, and the commit anchor. The store's own table and key names
never reach it: they are keyed hashes inside the sealed records, as on disk. What
PostgreSQL can see is the number, sizes and timing of commits.

``deltadb_head`` is the store's head: which log is current, where its next record goes
and the last committed sequence number. Every writing transaction of every host locks that
one row (``SELECT ... FOR UPDATE``), so writers on all hosts are serialized by PostgreSQL;
readers only read it.
``deltadb_flush`` holds counters only: a commit's durability is waited for by updating one
of them after the commit (see ``PgStorage.commit_records``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import errors as pgerrors

from deltadb_dialect.errors import CorruptStoreError, LockTimeoutError, StoreError

TABLES = ("deltadb_meta", "deltadb_head", "deltadb_logs", "deltadb_records", "deltadb_snapshots",
          "deltadb_flush")
FLUSH_SLOTS = 64

DDL = (
    "CREATE TABLE IF NOT EXISTS deltadb_meta (name text PRIMARY KEY, data bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deltadb_head (id integer PRIMARY KEY CHECK (id = 1), "
    "log text NOT NULL, log_end bigint NOT NULL, seq bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deltadb_logs (name text PRIMARY KEY, data bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deltadb_records (log text NOT NULL, off bigint NOT NULL, "
    "seq bigint NOT NULL, digest bytea NOT NULL, data bytea NOT NULL, PRIMARY KEY (log, off))",
    "CREATE INDEX IF NOT EXISTS deltadb_records_seq ON deltadb_records (seq)",
    "CREATE TABLE IF NOT EXISTS deltadb_snapshots (name text NOT NULL, part integer NOT NULL, "
    "data bytea NOT NULL, created timestamptz NOT NULL DEFAULT now(), "
    "PRIMARY KEY (name, part))",
    "INSERT INTO deltadb_head VALUES (1, '', 0, 0) ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS deltadb_flush (slot integer PRIMARY KEY, n bigint NOT NULL)",
    f"INSERT INTO deltadb_flush SELECT slot, 0 FROM generate_series(0, {FLUSH_SLOTS - 1}) slot "  # noqa: S608 - a constant
    "ON CONFLICT (slot) DO NOTHING",
)

# The advisory lock that serializes creating the store's tables (an arbitrary constant).
CREATE_LOCK_ID = 0x64656C7461  # "delta"

CONNECT_TIMEOUT = 5  # seconds to reach the server before saying it is unreachable
# A cut-off link: sent data unacknowledged this long ends the connection (both ends), so a
# host that lost its link fails its requests in bounded time and frees the head row.
TCP_USER_TIMEOUT_MS = 5000


class StorageUnavailableError(StoreError):
    """PostgreSQL could not be reached or dropped the connection; safe to retry."""


def is_postgresql_url(text: str | None) -> bool:
    return bool(text) and str(text).startswith(("postgresql://", "postgres://"))


def describe(url: str) -> str:
    """The server and database a URL names, without its password (for messages)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{user}{host}{port}{parts.path or '/'}"


def connect(url: str, *, timeout: float) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are explicit) with the store's time limits."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                               application_name="deltadb", keepalives=1, keepalives_idle=5,
                               keepalives_interval=2, keepalives_count=3,
                               tcp_user_timeout=TCP_USER_TIMEOUT_MS,
                               # Names travel as UTF-8 text whatever the database's encoding:
                               # in a SQL_ASCII database (initdb without a locale) psycopg
                               # would hand them back as bytes.
                               client_encoding="UTF8")
    except psycopg.OperationalError as exc:
        raise connect_error(url, exc) from None
    # Bounded waits: for the head row (other hosts' transactions), and for any statement (a
    # server that stopped answering); both surface as clean errors the caller may retry. A
    # transaction idle in PostgreSQL for longer than others wait for the head row is ended
    # by the server (its host is stuck or cut off): the head row is free again.
    wait_ms = int(timeout * 1000) or 1
    conn.execute(f"SET lock_timeout = {wait_ms}")
    conn.execute(f"SET statement_timeout = {max(wait_ms, 30_000) * 2}")
    conn.execute(f"SET idle_in_transaction_session_timeout = {max(wait_ms, 1000)}")
    conn.execute("SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
                 f"SET tcp_keepalives_count = 3; SET tcp_user_timeout = {TCP_USER_TIMEOUT_MS}")
    return conn


def connect_error(url: str, exc: Exception) -> StoreError:
    """One sentence for why the store's PostgreSQL server cannot be used."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = describe(url)
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return StoreError(f"PostgreSQL at {where} refused the password: fix the user or "
                          "password in the storage URL")
    if "does not exist" in lowered and "database" in lowered:
        return StoreError(f"PostgreSQL at {where}: the database does not exist; create it "
                          "(createdb) or fix the storage URL")
    if "role" in lowered and "does not exist" in lowered:
        return StoreError(f"PostgreSQL at {where}: the role does not exist; create it or fix "
                          "the user in the storage URL")
    return StorageUnavailableError(f"cannot reach PostgreSQL at {where} ({text}): check that "
                                   "the server runs and the storage URL's host and port")


def missing_tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("SELECT c.relname FROM pg_class c WHERE c.relname = ANY(%s) "
                        "AND c.relkind = 'r' AND pg_table_is_visible(c.oid)",
                        (list(TABLES),)).fetchall()
    present = {row[0] for row in rows}
    return [name for name in TABLES if name not in present]


def create_tables(conn: psycopg.Connection[Any], url: str) -> None:
    try:
        with conn.transaction():
            # App servers starting together on an empty database all create the tables:
            # CREATE TABLE IF NOT EXISTS is not safe against a concurrent creator (both pass
            # the check, one fails on the catalog's unique index), so creators take turns.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (CREATE_LOCK_ID,))
            # Another creator may have finished while this one waited: then nothing is run.
            # Its DDL would lock tables that host may already use (CREATE INDEX takes a share
            # lock on the records, the head row's INSERT waits for its transaction), and the
            # host's next statement waiting for this transaction ends in a deadlock.
            if not missing_tables(conn):
                return
            for statement in DDL:
                conn.execute(statement)
    except pgerrors.InsufficientPrivilege:
        raise StoreError(
            f"the PostgreSQL role at {describe(url)} may not create the store's tables: "
            "GRANT CREATE ON SCHEMA public to it, or create them once as the owner") from None


def statement_error(url: str, exc: Exception) -> StoreError:
    """The store error for a failed statement (the connection may or may not survive)."""
    if isinstance(exc, pgerrors.LockNotAvailable):
        return LockTimeoutError("database is locked: another app server held the store for "
                                "too long")
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return StoreError(f"the PostgreSQL role at {describe(url)} has no rights on the store's "
                          "tables: GRANT SELECT, INSERT, UPDATE, DELETE ON the deltadb_* tables "
                          "to it")
    if isinstance(exc, pgerrors.UndefinedTable):
        return CorruptStoreError(f"the PostgreSQL database at {describe(url)} has lost the "
                                 "store's tables")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StorageUnavailableError(f"lost the connection to PostgreSQL at {describe(url)}: "
                                       "the transaction in flight was not acknowledged; "
                                       "try again")
    return StoreError(f"PostgreSQL at {describe(url)} failed: {exc}")
