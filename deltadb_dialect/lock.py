"""The lock that serializes a store's transactions: a process mutex and an inter-process flock.

A transaction holds both from its first statement to its end, unless its connection asks
for the flock only at the first write (``locking=first_write``): then a transaction that
begins with a read, while another process may hold the flock, takes only the mutex and reads
a snapshot of the shared replica (WAL: readers never wait for the writer); at its first
write it waits for the flock, and the store catches up with whatever was committed since
its snapshot (see ``lock_for_write``). Lock retention: a
process keeps the flock between its transactions, so back-to-back transactions cost
no lock/unlock/fstat system calls. A process that wants the lock sets a flag in the
(mapped) lock file and wakes the holder's helper thread through a datagram to the
holder's abstract socket, whose name the holder publishes in the lock file. The holder
gives the lock up at the end of its turn (``TURN_SECONDS`` after it took the lock, while
it keeps running transactions), or as soon as it is idle (helper thread). With nobody
asking, the helper still gives the lock up after ``LOCK_IDLE_SECONDS`` without a
transaction (it wakes this often while the lock is kept, so a waiter that cannot wake it
waits at most about this).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deltadb_dialect.errors import LockNotAvailableError, LockTimeoutError

LOCK_IDLE_SECONDS = 1.0
HANDOVER_SECONDS = 0.002  # after giving the lock to a waiter, wait this long to take it back
# A process that took the lock from another keeps it this long while busy, even when asked
# for it: a handover costs more than a transaction (the taker catches up and reads the
# replica's pages afresh, since another process wrote them), so busy processes take turns
# of many transactions each. A waiter waits at most a turn and one transaction. Measured with
# the chat service on two workers (bench/api_bench.py --workers 2 --think-ms 0): 60 ms turns
# gave 1.4-1.5x the messages/s of 15 ms turns run beside them, at 0.65-0.7x the CPU per
# message and a lower p95; 30 ms and 100 ms turns did worse than 60.
TURN_SECONDS = 0.06
WAKE_REPEAT_SECONDS = 0.005  # a waiter wakes the holder's helper thread at most this often
# byte 0: "a process is waiting"; bytes 8-24: the holder's wake token; bytes 24-32: when the
# holder's turn ends (CLOCK_MONOTONIC seconds, the same clock in every process of the host)
LOCK_FILE_BYTES = 32
_TURN_END = struct.Struct("=d")
_WAKE_PREFIX = b"\0deltadb-lock-"

METRICS: dict[str, int] = {"lock_waits": 0}


class StoreLock:
    """The process mutex and the store's flock, kept between transactions while busy."""

    # Whether a process can keep the store between transactions, so that the next ones begin
    # without waiting (``would_wait`` False); a storage shared by hosts never can.
    kept_between_transactions = True

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.mutex = threading.Lock()
        self.owner_thread: int | None = None
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._map: mmap.mmap | None = None  # the lock file's shared "wanted" flag
        self.flock_held = False  # this process holds the flock (in or between transactions)
        self._activity = 0  # transactions started; the idle thread watches it move
        self._idle_wake = threading.Event()
        self._idle_thread: threading.Thread | None = None
        self._wake_token = secrets.token_bytes(16)  # names this process's wake socket
        self._wake_sender: socket.socket | None = None
        self._closing = False
        self._yield_until = 0.0
        self._turn_ends = 0.0  # a waiter asking before then waits for the end of our turn
        # The running transaction reads without the writer lock (a snapshot): its reads are
        # checked again when it takes the lock to write.
        self.reads_unlocked = False
        self._wait = timeout  # how long the running transaction may wait for the flock
        self._no_wait = threading.local()  # see not_waiting
        self._map_flag()

    def _map_flag(self) -> None:
        """Map the lock file's flag byte (shared by every process); without it, never retain."""
        try:
            if os.fstat(self._fd).st_size < LOCK_FILE_BYTES:
                # Written, not just extended: a store into a mapped hole could fault on a full disk.
                os.pwrite(self._fd, bytes(LOCK_FILE_BYTES), 0)
            self._map = mmap.mmap(self._fd, LOCK_FILE_BYTES)
        except (OSError, ValueError):
            self._map = None

    # --- whole-store holds (opening, tools) ----------------------------------------------

    def hold(self) -> None:
        """Take the mutex and the flock (at open); ``unhold`` gives both back."""
        self.mutex.acquire()
        try:
            self._flock(self.timeout)
        except BaseException:
            self.mutex.release()
            raise
        self.flock_held = True

    def unhold(self) -> None:
        try:
            self.unlock_file()
        finally:
            self.mutex.release()

    # --- transactions ---------------------------------------------------------------------

    def acquire(self, wait: float, *, write: bool = True) -> bool:
        """Take the store for one transaction; True if the flock was taken afresh (another
        process may have committed since this one last held it: the caller catches up).
        ``write``: whether the transaction takes the writer lock now; False (a transaction
        that begins with a read and may take it at its first write) takes only the mutex
        when another process may hold the flock (``reads_unlocked``)."""
        if self.owner_thread == threading.get_ident():
            raise LockTimeoutError(
                "database is locked: another connection in this thread has an open "
                "transaction; commit or close it first"
            )
        refusing = self.refuses_to_wait()
        if not self.mutex.acquire(timeout=0 if refusing else wait):
            if refusing:
                raise LockNotAvailableError(
                    "database is locked: another connection in this process has the store")
            raise LockTimeoutError(
                f"database is locked: another connection in this process held the store "
                f"for more than {wait:g} s"
            )
        if self.flock_held:
            return False
        if not write:
            self.reads_unlocked = True
            self._wait = wait
            return False
        try:
            self._take_flock(wait)
        except BaseException:
            self.mutex.release()
            raise
        return True

    def _take_flock(self, wait: float) -> None:
        if self.refuses_to_wait():
            self._take_flock_now()
            return
        if self._yield_until:  # we just handed the lock over: let the waiter take it
            pause = self._yield_until - time.monotonic()
            self._yield_until = 0.0
            if pause > 0:
                time.sleep(pause)
        self._flock(wait)
        self.flock_held = True
        self._begin_turn()

    def _take_flock_now(self) -> None:
        """The flock if it is free (and not just handed over); else ask its holder for it
        and raise ``LockNotAvailableError``."""
        try:
            if self._yield_until > time.monotonic():
                raise LockTimeoutError("handed over")
            self._flock(0.0)
        except LockTimeoutError:
            raise LockNotAvailableError(
                "database is locked: another process has the store") from None
        self._yield_until = 0.0
        self.flock_held = True
        self._begin_turn()

    @contextmanager
    def not_waiting(self) -> Iterator[None]:
        """Transactions of this thread in the block raise ``LockNotAvailableError`` where
        they would wait for the store (for work on an event loop, which must not block)."""
        previous = self.refuses_to_wait()
        self._no_wait.on = True
        try:
            yield
        finally:
            self._no_wait.on = previous

    def refuses_to_wait(self) -> bool:
        return getattr(self._no_wait, "on", False)

    @property
    def checks_reads(self) -> bool:
        """Whether the running transaction's reads before its first write are to be checked
        again when it takes the writer lock (it reads without it)."""
        return self.reads_unlocked

    def _begin_turn(self) -> None:
        self._turn_ends = time.monotonic() + TURN_SECONDS
        if self._map is not None:
            _TURN_END.pack_into(self._map, 24, self._turn_ends)  # waiters sleep until then

    def lock_for_write(self) -> bool:
        """A transaction that began reading writes: True when it read without the flock,
        which it now holds (the caller catches up and checks what the transaction read)."""
        if not self.reads_unlocked:
            return False
        self._take_flock(self._wait)  # (a timeout leaves the transaction reading, to end)
        self.reads_unlocked = False
        self._watch_idle()
        return True

    def began(self, *, fresh: bool) -> None:
        """The transaction runs (after any catch-up): watch for idleness, note the owner."""
        if fresh:
            self._watch_idle()
        self._activity += 1
        self.owner_thread = threading.get_ident()

    def abort(self) -> None:
        """Give everything up after a failed start (the catch-up raised)."""
        self.reads_unlocked = False
        if self.flock_held:
            self.unlock_file()
        self.mutex.release()

    def release(self) -> None:
        """End a transaction; keep the flock unless another process waits for it."""
        self.owner_thread = None
        if self.reads_unlocked:  # read without the flock: nothing to give up but the mutex
            self.reads_unlocked = False
            self.mutex.release()
            return
        flag = self._map
        if flag is None:
            self.unlock_file()
        elif flag[0] and self._turn_over():
            self.unlock_file()
            self._yield_until = time.monotonic() + HANDOVER_SECONDS
        self.mutex.release()

    def _turn_over(self) -> bool:
        return time.monotonic() >= self._turn_ends

    def unlock_file(self) -> None:
        self.flock_held = False
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def would_wait(self) -> bool:
        """Whether beginning a transaction now might block (see ``Store.would_wait``)."""
        return self.mutex.locked() or not self.flock_held

    def held_by_this_thread(self) -> bool:
        return self.owner_thread == threading.get_ident()

    # --- the flock ------------------------------------------------------------------------

    def _flock(self, wait: float) -> None:
        flag = self._map
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            METRICS["lock_waits"] += 1
        deadline = time.monotonic() + wait
        pause = 0.0002
        next_wake = 0.0
        while True:
            if flag is not None:
                flag[0] = 1  # ask the holder to give the lock up (re-asserted at each try)
                if time.monotonic() >= next_wake:
                    self._wake_holder(flag)
                    next_wake = time.monotonic() + WAKE_REPEAT_SECONDS
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if flag is not None:
                    flag[0] = 0  # other waiters set it again at their next try
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        "database is locked: another process held the store for too long"
                    ) from None
                time.sleep(self._pause_before_retry(flag, pause))
                pause = min(pause * 2, 0.001)

    @staticmethod
    def _pause_before_retry(flag: mmap.mmap | None, pause: float) -> float:
        """How long to wait before trying the flock again: while the holder's turn runs it
        keeps the lock (unless it goes idle), so trying every ``pause`` would only take the
        interpreter from this process's other threads a thousand times a second."""
        if flag is None:
            return pause
        turn_left = _TURN_END.unpack_from(flag, 24)[0] - time.monotonic()
        return max(pause, min(turn_left, WAKE_REPEAT_SECONDS))

    def _wake_holder(self, flag: mmap.mmap) -> None:
        """Wake the lock holder's helper thread (best effort: the flag is what counts)."""
        token = flag[8:24]
        if not any(token):
            return
        try:
            if self._wake_sender is None:
                self._wake_sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._wake_sender.setblocking(False)
            self._wake_sender.sendto(b"!", _WAKE_PREFIX + token.hex().encode())
        except OSError:
            pass  # no such holder any more, or not Linux: it gives the lock up when idle

    # --- the idle thread --------------------------------------------------------------------

    def _watch_idle(self) -> None:
        """Publish our wake token; have the helper thread give the lock up when asked or idle."""
        flag = self._map
        if flag is None:
            return
        flag[8:24] = self._wake_token
        if self._idle_thread is None:
            self._idle_thread = threading.Thread(target=self._idle_release, daemon=True,
                                                 name="deltadb-lock-release")
            self._idle_thread.start()
        self._idle_wake.set()

    def _idle_release(self) -> None:
        receiver: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            assert receiver is not None
            receiver.bind(_WAKE_PREFIX + self._wake_token.hex().encode())
            receiver.settimeout(LOCK_IDLE_SECONDS)
        except (OSError, AssertionError):
            if receiver is not None:
                receiver.close()
            receiver = None  # no abstract sockets here: check the flag every few ms instead
        try:
            while not self._closing:
                self._idle_wake.wait()
                self._idle_wake.clear()
                self._keep_while_busy(receiver)
        finally:
            if receiver is not None:
                receiver.close()

    def _keep_while_busy(self, receiver: socket.socket | None) -> None:
        """Give the flock up once this process is idle or another process asks for it."""
        seen = -1
        while self.flock_held and not self._closing:
            if receiver is not None:
                try:
                    receiver.recv(16)
                except TimeoutError:
                    pass
            else:
                time.sleep(0.002)
            flag = self._map
            try:
                wanted = flag is not None and flag[0]
            except ValueError:  # unmapped by close()
                return
            busy, seen = self._activity != seen, self._activity
            if busy and not (wanted and self._turn_over()):
                continue  # keep the lock for the next transaction
            if not self.mutex.acquire(blocking=False):
                continue  # a transaction is running; it gives the lock up at its end
            try:
                if self.flock_held and self.owner_thread is None and not self._closing:
                    self.unlock_file()
                    if wanted:
                        self._yield_until = time.monotonic() + HANDOVER_SECONDS
            except OSError:
                pass
            finally:
                self.mutex.release()

    def _stop_idle_thread(self) -> None:
        self._closing = True
        self._idle_wake.set()
        if self._idle_thread is not None:
            try:
                sender = self._wake_sender or socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sender.sendto(b"!", _WAKE_PREFIX + self._wake_token.hex().encode())
                if sender is not self._wake_sender:
                    sender.close()
            except OSError:
                pass
        if self._wake_sender is not None:
            self._wake_sender.close()
            self._wake_sender = None

    # --- fork and close ---------------------------------------------------------------------

    def after_fork_in_child(self) -> None:
        """A forked child shares the parent's lock file description: take its own."""
        self.flock_held = False
        self._idle_thread = None
        self._idle_wake = threading.Event()
        self._wake_token = secrets.token_bytes(16)
        self._wake_sender = None
        if self._fd >= 0:
            inherited = self._fd
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(inherited)  # the parent's lock stays: its own descriptor still refers to it

    def close(self) -> None:
        """Stop the helper and give the flock up (caller holds the mutex or is the last user)."""
        self._stop_idle_thread()
        if self._fd >= 0:
            if self.flock_held:
                self.unlock_file()
            os.close(self._fd)
            self._fd = -1
        flag, self._map = self._map, None
        if flag is not None:
            flag.close()
