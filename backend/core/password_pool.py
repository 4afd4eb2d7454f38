"""Password hashing in a small pool of its own, with a bounded waiting room.

Argon2id is slow and memory-hard on purpose (64 MiB per hash here). Run in the shared
thread pool, a burst of sign-ins by strangers ran dozens at once: the server's memory grew by
gigabytes and every other request waited behind them. Here at most `threads` hashes run at
once and at most `waiting` more wait for a thread; anyone beyond that gets a 503 with
Retry-After at once, so the queue (and the memory it costs) never grows with the attack.
"""

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from backend.core.config import settings
from backend.services.errors import ServiceBusy

T = TypeVar("T")

BUSY_MESSAGE = "The server is busy checking other passwords; try again in a moment."


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class PasswordPool:
    def __init__(self, *, threads: int, waiting: int) -> None:
        self.threads = threads
        self.capacity = threads + waiting
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="password")
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        """Hashes running or waiting for a thread."""
        return self._admitted

    def refuse_if_full(self) -> None:
        """Fail fast, before a caller does any other work for a hash it would not get."""
        if self._admitted >= self.capacity:
            raise ServiceBusy(BUSY_MESSAGE, retry_after=1)

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        """`fn(*args)` on one of the pool's threads, or ServiceBusy when the room is full."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise ServiceBusy(BUSY_MESSAGE, retry_after=1)
            self._admitted += 1
        future = self._executor.submit(fn, *args)
        # The slot is given back when the work is over (or cancelled while it still waited),
        # not when the caller stops waiting: a client that hangs up frees nothing early.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future: "Future[Any]") -> None:
        with self._lock:
            self._admitted -= 1


def _default_threads() -> int:
    return settings.PASSWORD_HASH_THREADS or min(usable_cores(), 8)


password_pool = PasswordPool(
    threads=_default_threads(),
    waiting=_default_threads() * settings.PASSWORD_HASH_WAITING_PER_THREAD,
)
