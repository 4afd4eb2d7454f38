"""The server's SQLAlchemy engine: a ``deltadb://`` store, or a SQLite file for development."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

WRITE_OPTION = "deltadb_server_write"
# Enough pooled connections for every thread that may hold one at once: the thread pool of
# sync routes (40), the group-commit writer and the heartbeat; a request never waits for a slot.
POOL = {"pool_size": 8, "max_overflow": 56, "pool_timeout": 60}


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    try:
        return create_engine(url, **POOL)
    except TypeError:  # a dialect whose pool takes no size (not QueuePool)
        return create_engine(url)


def _sqlite_engine(url: str) -> Engine:
    """SQLite stand-in with the deltadb store's behaviour: writers serialized, readers not.

    pysqlite's implicit transactions are switched off so that write transactions can take the
    write lock up front (BEGIN IMMEDIATE) instead of failing with "database is locked" when two
    processes upgrade from a read at once.
    """
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **POOL)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # durable at commit, like the deltadb store
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One short write transaction, committed (durably) when the block ends without error."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn
