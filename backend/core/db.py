"""The engine, sessions, and the guard that refuses an un-migrated database."""

import asyncio
import logging
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from anyio import CapacityLimiter, to_thread
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.dialects import registry
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from backend.core.config import settings
from backend.core.startup_errors import exit_on_configuration_error

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
logger = logging.getLogger(__name__)

# The package's entry point registers `deltadb://` once installed (`pip install -e .`);
# registering it here too lets a plain checkout run from its own directory.
registry.register("deltadb", "deltadb_dialect.pydeltadb", "DeltaDialect_pydeltadb")


def make_engine(url: str, *, enforce_foreign_keys: bool = True,
                lock_at_first_write: bool = False, **options: Any) -> Engine:
    """One engine per process; SQLite files get the pragmas that make them behave like a server.

    Migrations pass `enforce_foreign_keys=False`: Alembic's batch mode rebuilds a table by
    copy, drop and rename, and with SQLite enforcing foreign keys the drop would cascade
    into the child rows.

    `lock_at_first_write` (the app's own engine): on deltadb, transactions read a snapshot
    and take the store's writer lock at their first write (the driver's `locking` option,
    unless the URL sets it), so requests that only read never wait for another worker's
    writes. A unit whose reads another worker changed meanwhile fails with 40001, having
    written nothing, and runs again (`run_unit_of_work`).
    """
    options.setdefault("hide_parameters", True)  # a failed statement never logs user data
    if (lock_at_first_write and url.startswith("deltadb")
            and "locking" not in make_url(url).query):
        options.setdefault("connect_args", {"locking": "first_write"})
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=url.startswith("postgresql"), **options)
    connect_args = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, connect_args=connect_args, **options)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if enforce_foreign_keys else 'OFF'}")
        if ":memory:" not in url:
            # WAL lets readers run beside the writer; NORMAL sync is the WAL-safe setting
            # that skips an fsync per commit.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


with exit_on_configuration_error(database_url=settings.DATABASE_URL):
    engine = make_engine(settings.DATABASE_URL, lock_at_first_write=True)
# Objects stay readable after commit: routes build responses from them once the
# transaction is over, which keeps every transaction short.
SessionLocal = sessionmaker(bind=engine, expire_on_commit=False)


# How many worker threads may run database work at once. The embedded store runs one
# transaction at a time per process (its lock), so more threads would only queue on that
# lock while fighting over the GIL: the lock holder then waits for the interpreter between
# every few statements, and each transaction takes many times its CPU cost. One at a time
# keeps each transaction as short as its work; the others wait their turn on the event loop.
# Servers with concurrent transactions (PostgreSQL, SQLite in WAL) keep anyio's pool.
# A store kept in PostgreSQL (``?storage=``) is the exception: there a transaction's thread
# waits for the network (without the GIL), and reads take no lock in PostgreSQL.
_LOCAL_STORE = engine.dialect.name == "deltadb" and "storage" not in engine.url.query
database_threads = CapacityLimiter(1 if _LOCAL_STORE else 40)


async def run_in_session(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run `fn(session=..., **kwargs)` in a worker thread with its own short-lived session.

    Async routes use this so that no transaction is ever open while they await the model.
    Slow work without the database (password hashing) belongs outside it, in
    `run_in_threadpool`, so that it never holds up the database threads.
    """

    return await to_thread.run_sync(
        lambda: run_unit_of_work(fn, **kwargs), limiter=database_threads
    )


# A unit of work that lost a serialization race (another app server changed what it read
# before it wrote; nothing was written) runs again from its start, as PostgreSQL's
# documentation asks of SERIALIZABLE clients; after the last try the error reaches the
# route as a 503 ("try again").
SERIALIZATION_RETRIES = 4


def is_serialization_failure(error: BaseException) -> bool:
    """SQLSTATE 40001 from the driver: deltadb on a shared store, or PostgreSQL itself."""
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) == "40001"


def run_unit_of_work(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """`fn(session=..., **kwargs)` in a session of its own, again on a serialization failure."""
    for attempt in range(SERIALIZATION_RETRIES + 1):
        try:
            with SessionLocal() as session:
                return fn(session=session, **kwargs)
        except DBAPIError as error:
            if attempt == SERIALIZATION_RETRIES or not is_serialization_failure(error):
                raise
            logger.info("serialization_retry", extra={"unit": fn.__name__, "attempt": attempt})
            time.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 - jitter only
    raise AssertionError("unreachable")


# Whether quick units of work may run on the event loop itself (see run_quick_in_session).
QUICK_WORK_ON_LOOP = engine.dialect.name == "deltadb"
# ... and whether they may run there while another process has the store: the engine's
# transactions take the writer lock only at their first write (make_engine).
READS_WITHOUT_LOCK = _LOCAL_STORE and engine.url.query.get("locking") in (None, "first_write")
# The store's group commit handle (deltadb's driver API, `deltadb_dialect.group_commit`),
# taken from each new driver connection: the newest belongs to the store open now.
_group_commit: Any = None

if QUICK_WORK_ON_LOOP:

    @event.listens_for(engine, "connect")
    def _remember_group_commit(dbapi_connection: Any, _record: Any) -> None:
        global _group_commit
        _group_commit = dbapi_connection.group_commit()


async def run_quick_in_session(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """`run_in_session` for the per-message hot path: a few statements over bounded rows.

    On deltadb this runs right here on the event loop. The store runs one transaction at a
    time per process anyway, and handing a millisecond of work to a thread costs more than the
    work: the thread and the loop then trade the GIL back and forth (bench/api_bench.py, 50
    users: 5.4-5.9 ms of server CPU per message this way, 6.6-7.0 ms through the thread). When
    taking the store would wait (a database thread has it for a long search or an export,
    or another process holds it), a thread waits and takes it for this process (see
    `_store_for_the_loop`) while the loop goes on; then the unit runs on the loop. On the
    loop, a commit is acknowledged only after the log's sync, which the units of one loop
    round share (see `_on_the_loop`).
    """
    group = _group_commit
    if (READS_WITHOUT_LOCK and group is not None and group.is_open and group.can_be_taken
            and not group.ready() and not _WROTE_LAST_TIME.get(fn, False)):
        # Another process has the store's writer lock (or had it last): a unit that only
        # reads does not need it, so it runs here at once. Should it write while the lock is
        # still away, it fails (55P03, nothing written) and takes the way below.
        try:
            return await _on_the_loop(group, fn, True, **kwargs)
        except DBAPIError as error:
            if not (is_serialization_failure(error) or _lock_not_available(error)):
                raise
            _WROTE_LAST_TIME[fn] = True
    if QUICK_WORK_ON_LOOP and (store := await _store_for_the_loop()) is not None:
        try:
            return await _on_the_loop(store, fn, False, **kwargs)
        except DBAPIError as error:
            if not is_serialization_failure(error):
                raise
            # nothing was written: try again in a thread, where a retry may wait
    return await run_in_session(fn, **kwargs)


# Whether each unit (by function) committed a write when it last ran on the loop: one that
# did waits for the store's writer lock rather than first run without it, only to fail at its
# first write and run again (its reads done twice). A few dozen functions at most.
_WROTE_LAST_TIME: dict[Callable[..., Any], bool] = {}


def _lock_not_available(error: BaseException) -> bool:
    """SQLSTATE 55P03: the unit would have waited for the store where it must not."""
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) == "55P03"


async def _on_the_loop(group: Any, fn: Callable[..., T], never_wait: bool, /,
                       **kwargs: Any) -> T:
    """Run the unit here. Its commit returns once written; the log's sync comes after the
    other callbacks the loop has ready (more units, often), so one sync covers all of them,
    and nothing is answered before it. ``never_wait``: where the unit would wait for the
    store, it fails with 55P03 instead (the loop must not block)."""
    with (group.deferring() as written, group.not_waiting() if never_wait else nullcontext(),
          SessionLocal() as session):
        result = fn(session=session, **kwargs)
    _WROTE_LAST_TIME[fn] = written.seq is not None
    if written.seq is not None:
        await _synced(group, written.seq)
    return result


_sync_round: "asyncio.Future[None] | None" = None


async def _synced(group: Any, seq: int) -> None:
    """Wait for the loop's next sync round (group commit on the loop: one sync per round)."""
    global _sync_round
    loop = asyncio.get_running_loop()
    if _sync_round is None or _sync_round.get_loop() is not loop:  # (tests run several loops)
        _sync_round = loop.create_future()
        loop.call_soon(_sync_now, group, _sync_round)
    await asyncio.shield(_sync_round)
    group.make_durable(seq)  # a no-op unless this commit came after the round's sync


def _sync_now(group: Any, round_: "asyncio.Future[None]") -> None:
    global _sync_round
    if _sync_round is round_:
        _sync_round = None
    try:
        group.make_durable()  # up to the newest commit
    except Exception as exc:  # reported to every waiter of the round
        round_.set_exception(exc)
    else:
        round_.set_result(None)


# Taking the store when it is busy: one thread at a time does it for all the units waiting
# on the loop, apart from the database threads (which may be busy with long work).
_store_taker = CapacityLimiter(1)
_TAKES_BEFORE_A_THREAD = 3
_taking: "asyncio.Future[None] | None" = None


async def _store_for_the_loop() -> Any:
    """The store's group commit handle once a transaction begun on the loop would not wait:
    this process holds the store's lock and no other thread has it (None if that does not
    come). Until then a thread waits for the store while the loop goes on, and takes it for
    this process; the units waiting for it then run on the loop one after the other, instead
    of each in a thread with its own log sync (and, with several worker processes, with a
    handover of the store between every two of them)."""
    group = _group_commit
    if group is None or not group.is_open:
        return None
    if not group.can_be_taken:  # every transaction waits for a round trip: in a thread
        return group if group.ready() else None
    for _attempt in range(_TAKES_BEFORE_A_THREAD):
        if group.ready():
            return group
        try:
            await _store_taken(group)
        except Exception:  # noqa: BLE001 - the unit's own thread meets the error, if it lasts
            return None
        if not group.is_open:
            return None
    # Still not ready (the lock cannot be kept here, or others keep taking it first): the
    # unit runs in a thread of its own, which may wait.
    return group if group.ready() else None


async def _store_taken(group: Any) -> None:
    """Until a thread has taken the store for this process (one take shared by the waiters)."""
    global _taking
    loop = asyncio.get_running_loop()
    if _taking is None or _taking.done() or _taking.get_loop() is not loop:
        _taking = asyncio.ensure_future(to_thread.run_sync(group.take, limiter=_store_taker))
    await asyncio.shield(_taking)


def alembic_config() -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "alembic"))
    return config


def migration_problem(bind: Engine) -> str | None:
    """Explain why the database is not at the migration head, or None when it is."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with bind.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == head:
        return None
    state = "has no tables yet" if current is None else f"is at revision {current}"
    return (
        f"The database {state}, but this version of Open Chat needs revision {head}. "
        "Run `alembic upgrade head` (with the same DATABASE_URL) and start again."
    )
