"""The processes serving a store: each registers itself and keeps a heartbeat.

Rows live in ``__deltadb_workers``. A process that stops cleanly removes its row; one that
was killed stops beating and is shown as ``Unresponsive`` until it is pruned an hour later.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, delete, select

from deltadb_dialect.server import tables
from deltadb_dialect.server.auth import iso, utc_now
from deltadb_dialect.server.engine import read_transaction, write_transaction

W = tables.workers
PRUNE_AFTER = dt.timedelta(hours=1)


class WorkerRegistry:
    def __init__(self, engine: Engine, heartbeat_seconds: float = 5.0,
                 address: str | None = None, key_id: str | None = None) -> None:
        self.engine = engine
        self.heartbeat_seconds = heartbeat_seconds
        self.address = address
        self.key_id = key_id
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.started_at = iso(utc_now())
        self._task: asyncio.Task[None] | None = None
        self._request_count: Callable[[], int] | None = None

    def register(self) -> None:
        now = utc_now()
        with write_transaction(self.engine) as conn:
            conn.execute(delete(W).where(W.c.last_seen < iso(now - PRUNE_AFTER)))
            conn.execute(W.insert().values(
                worker_id=self.worker_id, pid=os.getpid(), host=socket.gethostname(),
                address=self.address, started_at=self.started_at, last_seen=iso(now),
                status="Available", requests=0,
            ))

    def beat(self, requests: int) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(W.update().where(W.c.worker_id == self.worker_id).values(
                last_seen=iso(utc_now()), requests=requests, status="Available"))

    def unregister(self) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(delete(W).where(W.c.worker_id == self.worker_id))

    def start(self, request_count: Callable[[], int]) -> None:
        self._request_count = request_count
        self.register()
        self._task = asyncio.get_running_loop().create_task(self._heartbeat(request_count))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.unregister)

    async def _heartbeat(self, request_count: Callable[[], int]) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:  # a failed beat (store busy) must not end the loop
                await asyncio.to_thread(self.beat, request_count())
            except Exception:  # noqa: BLE001, S112 - logged by the next successful beat's absence
                continue

    def list(self) -> list[dict[str, Any]]:
        """Workers in DeltaDatabase's shape, plus pid, host, start time and request count."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(W).order_by(W.c.started_at, W.c.worker_id)).all()
        stale_before = iso(utc_now() - dt.timedelta(seconds=3 * self.heartbeat_seconds + 2))
        result = []
        for row in rows:
            status = row.status if row.last_seen >= stale_before else "Unresponsive"
            this_process = row.worker_id == self.worker_id
            requests = row.requests
            if this_process and self._request_count is not None:
                requests = self._request_count()  # live figure for the process answering
            result.append({
                "worker_id": row.worker_id,
                "status": status,
                "key_id": self.key_id,
                "last_seen": row.last_seen,
                "tags": {"pid": str(row.pid), "host": row.host,
                         "rest_addr": row.address or ""},
                "pid": row.pid,
                "host": row.host,
                "started_at": row.started_at,
                "requests": requests,
                "this_process": this_process,
            })
        return result
