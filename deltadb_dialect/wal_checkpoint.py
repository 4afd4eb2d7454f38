"""The replica's WAL copied back into its database file by a thread of its own.

SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past 1,000
pages: the committing thread reads the WAL, writes the pages into the database file and
syncs both (``synchronous=NORMAL``), so a bulk commit paid for the previous commits'
pages as well as its own. Here the committing connection only notes the WAL's size
(SQLite's WAL hook, which replaces the automatic checkpoint); once it passes
``PAGES`` a background thread runs a PASSIVE checkpoint through its own connection.
apsw releases the GIL while SQLite works, so the copy and its syncs overlap the next
transaction instead of lengthening this one. A PASSIVE checkpoint never blocks readers
or the writer; the next commit after a complete one starts the WAL from its beginning.

Should the thread fall behind (``LIMIT`` pages, 1 GiB), the committing connection
checkpoints inline, as SQLite would have: the WAL stays bounded whatever the write rate.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import apsw

from deltadb_dialect.replica_file import UNUSABLE, open_connection

logger = logging.getLogger("deltadb_dialect")

PAGES = 4096  # WAL pages (16 MiB of 4 KiB pages) that start a background checkpoint
# ... and that the committing connection checkpoints itself past. A checkpoint packing the
# replica holds one read snapshot for its whole run (tens of seconds at millions of rows),
# and no checkpoint can copy frames past a reader's snapshot, so the WAL grows meanwhile by
# what is committed: an inline checkpoint then would copy hundreds of megabytes inside one
# commit for nothing a thread could not do. This bound is for a thread that truly falls
# behind.
LIMIT = 64 * PAGES

METRICS: dict[str, int] = {"wal_checkpoints": 0, "wal_checkpoints_inline": 0}


class WalCheckpointer:
    """Checkpoints one replica file's WAL in the background, for one writing connection."""

    def __init__(self, path: Path, key: bytes, *, pages: int | None = None,
                 limit: int | None = None) -> None:
        self._path = path
        self._key = key
        self._pages = PAGES if pages is None else pages
        self._limit = LIMIT if limit is None else limit
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def attach(self, conn: apsw.Connection) -> None:
        """Take over the checkpoints of ``conn`` (the process's replica connection)."""
        conn.set_wal_hook(self._after_commit)

    def _after_commit(self, conn: apsw.Connection, name: str, pages: int) -> int:
        """SQLite's WAL hook: called by the committing thread just after each commit."""
        if pages >= self._limit:
            METRICS["wal_checkpoints_inline"] += 1
            try:
                conn.wal_checkpoint(name)  # PASSIVE; a busy file is left for the next commit
            except apsw.BusyError:
                pass
        elif pages >= self._pages and not self._stopping:
            self._start()
            self._wake.set()
        return apsw.SQLITE_OK

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="deltadb-wal-checkpoint")
            self._thread.start()

    def _run(self) -> None:
        conn: apsw.Connection | None = None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                if conn is None:
                    conn = open_connection(self._path, self._key, cache_mb=1.0)
                try:
                    conn.wal_checkpoint()  # PASSIVE: copies what no reader still needs
                    METRICS["wal_checkpoints"] += 1
                except apsw.BusyError:
                    pass  # another process's checkpoint is running: it does the work
        except UNUSABLE as exc:  # the file was replaced or damaged: commits find out
            logger.debug("the replica's WAL checkpoint stopped: %s", exc)
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        """End the thread and close its connection (before the replica is closed)."""
        self._stopping = True
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            self._wake.set()
            thread.join(30)

    def forget_after_fork(self) -> None:
        """A forked child has no thread of its parent's: it starts its own when needed."""
        self._thread = None
        self._wake = threading.Event()
