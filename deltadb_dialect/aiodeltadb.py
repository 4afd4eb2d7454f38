"""The asyncio driver: ``deltadb+aiodeltadb:///path/to/store`` with ``create_async_engine``.

Same URL options and semantics as the default driver (see ``pydeltadb``);
calls run on one worker thread per connection (see ``aio``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import pool
from sqlalchemy.connectors.asyncio import (
    AsyncAdapt_dbapi_connection,
    AsyncAdapt_dbapi_cursor,
    AsyncAdapt_dbapi_module,
    AsyncAdapt_dbapi_ss_cursor,
)
from sqlalchemy.engine.url import URL
from sqlalchemy.util.concurrency import await_

from deltadb_dialect.pydeltadb import DeltaDialect_pydeltadb


class AsyncAdapt_deltadb_cursor(AsyncAdapt_dbapi_cursor):
    __slots__ = ()


class AsyncAdapt_deltadb_ss_cursor(AsyncAdapt_dbapi_ss_cursor):
    __slots__ = ()


class AsyncAdapt_deltadb_connection(AsyncAdapt_dbapi_connection):
    __slots__ = ()

    _cursor_cls = AsyncAdapt_deltadb_cursor
    _ss_cursor_cls = AsyncAdapt_deltadb_ss_cursor

    @property
    def isolation_level(self) -> str | None:
        level: str | None = self._connection.isolation_level
        return level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        try:
            await_(self._connection.create_function(*args, **kwargs))
        except Exception as error:
            self._handle_exception(error)


class AsyncAdapt_deltadb_dbapi(AsyncAdapt_dbapi_module):
    def __init__(self) -> None:
        from deltadb_dialect import aio, dbapi

        super().__init__(aio, dbapi_module=dbapi)
        self.aio = aio
        self.paramstyle = "qmark"
        for name in ("DatabaseError", "Error", "IntegrityError", "NotSupportedError",
                     "OperationalError", "ProgrammingError", "InterfaceError", "DataError",
                     "InternalError", "Warning", "sqlite_version", "sqlite_version_info",
                     "Binary"):
            setattr(self, name, getattr(dbapi, name))

    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdapt_deltadb_connection:
        connection: Any = await_(self.aio.connect(*args, **kwargs))
        return AsyncAdapt_deltadb_connection(self, connection)


class DeltaDialect_aiodeltadb(DeltaDialect_pydeltadb):
    driver = "aiodeltadb"
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = False

    @classmethod
    def import_dbapi(cls) -> Any:
        return AsyncAdapt_deltadb_dbapi()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool

    def get_driver_connection(self, connection: Any) -> Any:
        return connection._connection


dialect = DeltaDialect_aiodeltadb
