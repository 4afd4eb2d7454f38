"""Many requests in flight on a one-connection pool: every unit of database work opens and
closes within one worker-thread hop, so nothing waits on a transaction parked between hops."""

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from chat_factories import create_user
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from backend.core import db
from backend.core.config import settings
from backend.core.db import SessionLocal, make_engine, run_quick_in_session
from backend.main import app

# More requests in flight than the thread pool has threads (40), on a one-connection pool.
USERS, READS = 8, 8


@pytest.fixture
def one_connection_pool(migrated_engine: Engine) -> Iterator[None]:
    small = make_engine(settings.DATABASE_URL, pool_size=1, max_overflow=0, pool_timeout=10)
    SessionLocal.configure(bind=small)
    yield
    SessionLocal.configure(bind=migrated_engine)
    small.dispose()


async def test_a_hundred_concurrent_requests_on_one_connection(one_connection_pool: None) -> None:
    users = [create_user() for _ in range(USERS)]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as http:

        async def session_of_requests(user) -> list[int]:  # type: ignore[no-untyped-def]
            created = await http.post("/api/conversations", json={}, headers=user.headers)
            url = f"/api/conversations/{created.json()['uuid']}/messages"
            answers = [
                http.post(url, json={"content": f"q{n}"}, headers=user.headers) for n in range(3)
            ]
            reads = [http.get("/api/conversations", headers=user.headers) for _ in range(READS)]
            results = await asyncio.gather(*answers, *reads, http.get(url, headers=user.headers))
            return [created.status_code, *(response.status_code for response in results)]

        statuses = await asyncio.wait_for(
            asyncio.gather(*(session_of_requests(user) for user in users)), timeout=60
        )
    flat = [status for per_user in statuses for status in per_user]
    assert len(flat) == USERS * (READS + 5)
    # Questions racing into one conversation may conflict (409), but nothing starves or fails.
    assert set(flat) <= {200, 201, 409}
    assert flat.count(409) <= USERS * 2


@pytest.mark.skipif(
    not settings.DATABASE_URL.startswith("deltadb"), reason="the quick path is deltadb's"
)
async def test_quick_work_runs_on_the_loop_once_the_store_is_taken_for_it(
    migrated_engine: Engine,
) -> None:
    """Short units run on the event loop's own thread; while another thread holds the store
    a thread waits for it, so that the loop never blocks, and the unit then runs on the loop."""
    loop_thread = threading.get_ident()

    def where(*, session: Session) -> int:
        session.execute(text("SELECT 1"))
        return threading.get_ident()

    await run_quick_in_session(where)  # this process now keeps the store's lock
    assert await run_quick_in_session(where) == loop_thread

    holding, release = threading.Event(), threading.Event()

    def hold_the_store() -> None:
        with SessionLocal() as session:
            session.execute(text("SELECT 1"))  # the store is taken until this session ends
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_store)
    holder.start()
    assert holding.wait(10)
    queued = asyncio.ensure_future(run_quick_in_session(where))
    await asyncio.sleep(0.05)
    assert not queued.done()  # waiting, but not on the loop: we are still running
    release.set()
    assert await asyncio.wait_for(queued, 10) == loop_thread
    holder.join(10)


@pytest.mark.skipif(
    not settings.DATABASE_URL.startswith("deltadb"), reason="the quick path is deltadb's"
)
async def test_quick_work_is_answered_only_once_its_commit_is_synced(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the loop, a commit returns once written; the unit's result waits for the log's sync
    (one per loop round, shared by the units that committed in that round)."""
    from deltadb_dialect.store import Store

    syncs: list[int] = []
    make_durable = Store.make_durable

    def recording(store: Store, seq: int) -> None:
        syncs.append(seq)
        make_durable(store, seq)

    monkeypatch.setattr(Store, "make_durable", recording)
    user = create_user()

    def write(*, session: Session) -> int:
        rename = text("UPDATE users SET full_name = 'Synced' WHERE username = :name")
        session.execute(rename, {"name": user.username})
        session.commit()
        return threading.get_ident()

    def store_seq(*, session: Session) -> tuple[int, int]:
        session.execute(text("SELECT 1"))  # the store is open and caught up
        group = db._group_commit  # the driver's group commit handle for the engine's store
        return group.last_seq, group.durable_seq

    await run_quick_in_session(store_seq)  # this process now keeps the store's lock
    assert await run_quick_in_session(write) == threading.get_ident()  # ran on the loop
    seq, durable = await run_quick_in_session(store_seq)  # read-only: syncs nothing itself
    assert syncs and max(syncs) >= seq and durable >= seq
