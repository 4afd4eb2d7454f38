"""Deferred sync (group commit): commits written at once, synced later, one sync for many."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

import deltadb_dialect.log
from deltadb_dialect.errors import StoreError
from deltadb_dialect.registry import open_stores
from deltadb_dialect.store import Store


def _store_of(engine: Engine, store_dir: Path) -> Store:
    with engine.connect():  # opens the store
        pass
    return next(store for store in open_stores() if store.location == store_dir.resolve())


def _anchor_seq(store_dir: Path) -> int:
    return int.from_bytes((store_dir / "store.seq").read_bytes()[:8], "big")


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every sync of a log, recorded (and still done)."""
    done: list[int] = []
    real = deltadb_dialect.log._sync_data

    def counting(fd: int) -> None:
        done.append(fd)
        real(fd)

    monkeypatch.setattr(deltadb_dialect.log, "_sync_data", counting)
    return done


@pytest.fixture
def table_t(make_engine, store_dir: Path) -> tuple[Engine, Store]:
    """An engine on a store holding an empty table ``t``, and that store."""
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INT)"))
    return engine, _store_of(engine, store_dir)


def _insert(engine: Engine, value: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})


def test_deferred_commits_are_visible_at_once_and_one_sync_covers_them(
    table_t: tuple[Engine, Store], store_dir: Path, syncs: list[int]
) -> None:
    engine, store = table_t
    before, synced_before = _anchor_seq(store_dir), len(syncs)
    with store.deferring_sync() as written:
        for value in range(5):
            _insert(engine, value)
    assert written.seq == store.seq and len(syncs) == synced_before  # written, not synced
    with engine.connect() as conn:  # visible to the next transaction at once
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 5
    assert _anchor_seq(store_dir) == before  # the anchor never runs ahead of the disk
    store.make_durable(written.seq)
    store.make_durable(written.seq - 2)  # already covered: no second sync
    assert len(syncs) == synced_before + 1
    assert _anchor_seq(store_dir) == written.seq


def test_deferred_commits_survive_reopening(table_t: tuple[Engine, Store], make_engine) -> None:
    engine, store = table_t
    with store.deferring_sync() as written:
        _insert(engine, 7)
    store.make_durable(written.seq)
    engine.dispose()
    with make_engine().connect() as conn:
        assert conn.execute(text("SELECT v FROM t")).scalars().all() == [7]


def test_a_failed_sync_is_reported_and_the_store_takes_no_more_work(
    table_t: tuple[Engine, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, store = table_t
    with store.deferring_sync() as written:
        _insert(engine, 1)

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(deltadb_dialect.log, "_sync_data", failing)
    with pytest.raises(StoreError, match="could not be synced"):
        store.make_durable(written.seq)
    with pytest.raises(Exception, match="could not be synced"):
        _insert(engine, 2)
