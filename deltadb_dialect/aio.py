"""An asyncio face for the DB-API driver, shaped like ``aiosqlite``.

Each connection owns one worker thread; every call runs there, so waiting for
the store's lock or for the commit's fsync never blocks the event loop, and a
connection's calls stay in order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deltadb_dialect import dbapi


class AsyncCursor:
    def __init__(self, connection: AsyncConnection, cursor: dbapi.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> AsyncCursor:
        await self._connection._run(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Any) -> AsyncCursor:
        await self._connection._run(self._cursor.executemany, sql, seq_of_parameters)
        return self

    # Rows are already in memory (the driver fetches eagerly): no thread hop needed.
    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        return None

    async def nextset(self) -> None:
        return None

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __aiter__(self) -> AsyncCursor:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class AsyncConnection:
    def __init__(self, connection: dbapi.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = connection
        self._executor = executor

    async def _run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor,
                                          functools.partial(function, *args, **kwargs))

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value

    def cursor(self) -> AsyncCursor:
        return AsyncCursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> AsyncCursor:
        cursor = self.cursor()
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        await self._run(self._conn.commit)

    async def rollback(self) -> None:
        await self._run(self._conn.rollback)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        await self._run(self._conn.create_function, *args, **kwargs)

    async def close(self) -> None:
        try:
            await self._run(self._conn.close)
        finally:
            self._executor.shutdown(wait=False)

    def stop(self) -> None:
        """Force-close without the event loop (pool termination)."""
        self._executor.submit(self._conn.close)
        self._executor.shutdown(wait=False)


async def connect(database: str, **kwargs: Any) -> AsyncConnection:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deltadb-aio")
    loop = asyncio.get_running_loop()
    try:
        connection = await loop.run_in_executor(
            executor, functools.partial(dbapi.connect, database, **kwargs))
    except BaseException:
        executor.shutdown(wait=False)
        raise
    return AsyncConnection(connection, executor)


# The DB-API module attributes the async adapter re-exports.
Error = dbapi.Error
DatabaseError = dbapi.DatabaseError
IntegrityError = dbapi.IntegrityError
NotSupportedError = dbapi.NotSupportedError
OperationalError = dbapi.OperationalError
ProgrammingError = dbapi.ProgrammingError
sqlite_version = dbapi.sqlite_version
sqlite_version_info = dbapi.sqlite_version_info
