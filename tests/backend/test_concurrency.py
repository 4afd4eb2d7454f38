"""Many requests in flight on a one-connection pool: every unit of database work opens and
closes within one worker-thread hop, so nothing waits on a transaction parked between hops."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from chat_factories import create_user
from sqlalchemy import Engine

from backend.core.config import settings
from backend.core.db import SessionLocal, make_engine
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
