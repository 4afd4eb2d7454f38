"""Group commit: concurrent PUTs of one process share a transaction and so one fsync.

A DeltaDB commit is durable (one fsync) and commits are serialized, so a PUT's cost is mostly
waiting for the disk. A single writer thread per process takes every PUT that is waiting,
applies each inside its own SAVEPOINT (a PUT that fails rolls back alone, so each stays all or
nothing), commits once, and only then answers every PUT of the batch. Nothing is acknowledged
before the commit that made it durable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection, Table

from deltadb_dialect.server.engine import write_transaction
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.store import EntityStore, sql_errors_as_api_errors

log = logging.getLogger("deltadb.server")


@dataclass
class _Job:
    db: str
    documents: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]
    validated_with: str | None = None  # the schema text checked before queueing


def _settle(job: _Job, error: BaseException | None) -> None:
    def settle() -> None:
        if job.done.cancelled():
            return
        if error is None:
            job.done.set_result(None)
        else:
            job.done.set_exception(error)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the caller's event loop has closed: nobody is waiting any more
        pass


class GroupCommitWriter:
    def __init__(self, store: EntityStore, max_batch: int = 128) -> None:
        self.store = store
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0
        self.batched_puts = 0

    async def put(self, db: str, documents: dict[str, Any]) -> None:
        """Write ``documents`` all or nothing; returns once the commit is durable."""
        loop = asyncio.get_running_loop()
        # Validate before queueing, never in the writer's transaction: a document that is
        # slow to check holds up its own request only. The lookup is cached and short.
        schema_text = self.store.schemas.cached_text(db)
        if schema_text is not None:
            await run_in_threadpool(self.store.schemas.check_documents, schema_text, db,
                                    documents)
        job = _Job(db, documents, loop, loop.create_future(), schema_text)
        self._ensure_thread()
        self._jobs.put(job)
        await job.done

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._start_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="deltadb-writer",
                                                    daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        outcomes: list[BaseException | None] = []
        try:
            # Tables are looked up before the transaction: the catalog may reflect, which
            # takes the store, and must not wait for it while this transaction holds it.
            tables = [self.store.catalog.table(job.db) for job in batch]
            with sql_errors_as_api_errors(), write_transaction(self.store.engine) as conn:
                if len(batch) == 1:  # alone: the transaction itself is the unit
                    self.store.apply_put(conn, batch[0].db, tables[0], batch[0].documents,
                                         batch[0].validated_with)
                    outcomes = [None]
                else:
                    outcomes = [self._apply_in_savepoint(conn, job, table)
                                for job, table in zip(batch, tables, strict=True)]
        except ApiError as error:  # the commit (or a lone PUT) failed: nothing was written
            outcomes = [error] * len(batch)
        except Exception as error:
            log.exception("group commit failed: %s", type(error).__name__)
            outcomes = [error] * len(batch)
        self.batches += 1
        self.batched_puts += len(batch)
        for job, outcome in zip(batch, outcomes, strict=True):
            _settle(job, outcome)

    def _apply_in_savepoint(
        self, conn: Connection, job: _Job, table: Table | None
    ) -> BaseException | None:
        savepoint = conn.begin_nested()
        try:
            with sql_errors_as_api_errors():
                self.store.apply_put(conn, job.db, table, job.documents, job.validated_with)
        except Exception as error:
            savepoint.rollback()
            return error
        savepoint.commit()
        return None
