"""Group commit: concurrent PUTs share a transaction, yet each stays all or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import sqlalchemy as sa

from deltadb_dialect.server.engine import make_engine
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.group_commit import GroupCommitWriter
from deltadb_dialect.server.schemas import SchemaRegistry
from deltadb_dialect.server.store import EntityStore
from deltadb_dialect.server.tables import create_internal_tables


async def test_failures_in_a_batch_roll_back_alone(engine_url: str) -> None:
    engine = make_engine(engine_url)
    create_internal_tables(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE people (id INTEGER PRIMARY KEY, "
                             "email TEXT NOT NULL UNIQUE)")
    store = EntityStore(engine, SchemaRegistry(engine), catalog_ttl=0.0)
    store.schemas.put("docs", {"type": "object", "required": ["ok"]})
    writer = GroupCommitWriter(store)

    def job(i: int) -> Coroutine[Any, Any, None]:
        if i % 3 == 0:  # the second document breaks the schema: the whole PUT must fail
            return writer.put("docs", {f"bad{i}": {"ok": 1}, f"bad{i}b": {"nope": 1}})
        if i % 3 == 1:  # the same email twice: the later PUT must fail with 409
            return writer.put("people", {str(i): {"email": f"e{i // 6}@x"}})
        return writer.put("docs", {f"good{i}": {"ok": 1}, f"good{i}b": {"ok": 2}})

    outcomes = await asyncio.gather(*(job(i) for i in range(60)), return_exceptions=True)
    # The 20 PUTs that break the schema are refused before they reach the writer (validation
    # never runs in its transaction); the other 40 shared commits.
    assert writer.batched_puts == 40 and writer.batches < 40

    for i, outcome in enumerate(outcomes):
        if i % 3 == 0:
            assert isinstance(outcome, ApiError) and outcome.status == 400, outcome
            assert store.get("docs", f"bad{i}") is None and store.get("docs", f"bad{i}b") is None
        elif i % 3 == 2:
            assert outcome is None, outcome
            assert store.get("docs", f"good{i}") == '{"ok":1}'
            assert store.get("docs", f"good{i}b") == '{"ok":2}'
    people = [outcomes[i] for i in range(60) if i % 3 == 1]
    assert sum(outcome is None for outcome in people) == 10  # one per distinct email
    assert all(isinstance(o, ApiError) and o.status == 409 for o in people if o is not None)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM people")).scalar() == 10
    engine.dispose()


async def test_a_lone_put_is_its_own_transaction(engine_url: str) -> None:
    engine = make_engine(engine_url)
    create_internal_tables(engine)
    store = EntityStore(engine, SchemaRegistry(engine))
    writer = GroupCommitWriter(store)
    await writer.put("db", {"k": [1]})
    assert store.get("db", "k") == "[1]"
    store.schemas.put("db", {"type": "object"})
    try:
        await writer.put("db", {"k": [2]})
    except ApiError as error:
        assert error.status == 400
    else:
        raise AssertionError("the schema should have refused the document")
    assert store.get("db", "k") == "[1]"
    engine.dispose()


async def test_catalog_refreshes_never_deadlock_with_the_writer(engine_url: str) -> None:
    """Readers refreshing the table catalog (TTL 0) while batches commit: no lock waits.

    The writer once looked tables up inside its transaction while a reader held the catalog
    lock and waited for the store: both stalled until the store's 30 s lock timeout.
    """
    import threading
    import time

    engine = make_engine(engine_url)
    create_internal_tables(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
    store = EntityStore(engine, SchemaRegistry(engine), catalog_ttl=0.0)
    writer = GroupCommitWriter(store)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                store.get("docs", "k0")
                store.databases()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
                return

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    try:
        for round_ in range(15):
            await asyncio.wait_for(asyncio.gather(
                *(writer.put("docs", {f"k{i}": {"r": round_}}) for i in range(8)),
                *(writer.put("items", {str(i): {"v": str(round_)}}) for i in range(8)),
            ), timeout=10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors[:1]
    assert time.monotonic() - started < 20
    engine.dispose()
