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


def _lower_priority() -> None:
    """Hashing threads yield the CPU to the event loop and the database thread: a burst of
    hashes then slows other hashes, not every other request. (Linux's nice is per thread.)"""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: normal priority
        pass


class PasswordPool:
    def __init__(self, *, threads: int, waiting: int) -> None:
        self.threads = threads
        self.capacity = threads + waiting
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="password", initializer=_lower_priority
        )
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        """Callers holding a place: hashing, waiting for a thread, or about to hash."""
        return self._admitted

    def admit(self) -> "Admission":
        """A place in the pool, taken before the caller does any other work for it (reading
        the account, say), so a refused caller costs nothing; ServiceBusy when full."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise ServiceBusy(BUSY_MESSAGE, retry_after=1)
            self._admitted += 1
        return Admission(self)

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        """`fn(*args)` on one of the pool's threads, admitted for just this call."""
        with self.admit() as admission:
            return await admission.run(fn, *args)

    def _submit(self, fn: Callable[..., T], *args: Any) -> "Future[T]":
        return self._executor.submit(fn, *args)

    def _release(self, _future: "Future[Any] | None" = None) -> None:
        with self._lock:
            self._admitted -= 1


class Admission:
    """One caller's place in the pool, for one or more hashes in a row."""

    def __init__(self, pool: PasswordPool) -> None:
        self._pool = pool
        self._running: Future[Any] | None = None

    def __enter__(self) -> "Admission":
        return self

    def __exit__(self, *_exc: object) -> None:
        # A caller that stops waiting (the client hung up) gives its place back only when
        # its hash is over, so the threads never hold more work than the room allows.
        if self._running is not None and not self._running.done():
            self._running.add_done_callback(self._pool._release)
        else:
            self._pool._release()

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        self._running = self._pool._submit(fn, *args)
        return await asyncio.wrap_future(self._running)


def _default_threads() -> int:
    return settings.PASSWORD_HASH_THREADS or min(usable_cores(), 8)


password_pool = PasswordPool(
    threads=_default_threads(),
    waiting=_default_threads() * settings.PASSWORD_HASH_WAITING_PER_THREAD,
)
