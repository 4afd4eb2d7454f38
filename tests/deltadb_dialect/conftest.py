"""Fixtures for the store and dialect tests: a master key, a store directory, engines."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

import deltadb_dialect  # noqa: F401 - registers the dialect


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = secrets.token_hex(32)
    monkeypatch.setenv("DELTADB_MASTER_KEY", key)
    return key


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def make_engine(master_key: str, store_dir: Path) -> Iterator[Callable[..., Engine]]:
    """Engines on the test's store; all disposed at the end (closing the store)."""
    engines: list[Engine] = []

    def factory(url: str | None = None, **kwargs: object) -> Engine:
        engine = create_engine(url or f"deltadb:///{store_dir}", **kwargs)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.dispose()


# SQLAlchemy's and Alembic's compliance suites take over a pytest session: they run
# as their own invocation (docs/COMPLIANCE.md), never inside the main run.
collect_ignore = ["compliance"]
