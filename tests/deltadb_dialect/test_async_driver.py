"""The asyncio driver works with create_async_engine and AsyncSession."""

from __future__ import annotations

import asyncio

from sqlalchemy import String, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(100))


async def test_async_engine_orm_round_trip_and_concurrency(master_key, store_dir) -> None:
    engine = create_async_engine(f"deltadb+aiodeltadb:///{store_dir}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)

    async def add(n: int) -> None:
        async with AsyncSession(engine) as session:
            session.add(Note(body=f"note {n}"))
            await session.commit()

    await asyncio.gather(*(add(n) for n in range(20)))  # transactions queue, none is lost
    async with AsyncSession(engine) as session:
        bodies = (await session.scalars(select(Note.body).order_by(Note.id))).all()
    assert sorted(bodies) == sorted(f"note {n}" for n in range(20))
    await engine.dispose()

    reopened = create_async_engine(f"deltadb+aiodeltadb:///{store_dir}")
    async with reopened.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar() == 20
    await reopened.dispose()
