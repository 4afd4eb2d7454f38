"""Revision 0009 adds the server settings an admin changes; the admin's row outlives them."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_DB
from sqlalchemy import Engine, inspect, text
from test_alembic_migrations import fresh_url, run_alembic

from backend.core.db import make_engine

BEFORE = "0006_import_jobs"


@pytest.fixture(params=sorted({"sqlite", TEST_DB} - {"postgresql"}))
def engine_before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    # As alembic/env.py migrates: without foreign-key enforcement (SQLite's batch rebuilds).
    url = fresh_url(request.param, tmp_path, f"settings-{secrets.token_hex(4)}")
    engine = make_engine(url, enforce_foreign_keys=False)
    run_alembic(engine, "upgrade", BEFORE)
    yield engine
    engine.dispose()


def test_upgrade_adds_the_table_and_downgrade_removes_it(engine_before: Engine) -> None:
    assert "server_settings" not in inspect(engine_before).get_table_names()
    run_alembic(engine_before, "upgrade", "head")
    stamp = "'2026-12-02 10:00:00'"
    with engine_before.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, email, hashed_password, is_active, is_admin,"
                f" created_at, updated_at) VALUES (1, 'root', 'root@example.com', 'x', 1, 1,"
                f" {stamp}, {stamp})"
            )
        )
        connection.execute(
            text(
                "INSERT INTO server_settings (name, value, updated_by_id, updated_at)"
                f" VALUES ('zero_access_required', 'true', 1, {stamp})"
            )
        )
    columns = {c["name"] for c in inspect(engine_before).get_columns("server_settings")}
    assert columns == {"name", "value", "updated_by_id", "updated_at"}
    (foreign,) = inspect(engine_before).get_foreign_keys("server_settings")
    assert foreign["referred_table"] == "users"
    assert foreign["options"].get("ondelete") == "SET NULL"
    run_alembic(engine_before, "downgrade", BEFORE)
    assert "server_settings" not in inspect(engine_before).get_table_names()
    with engine_before.connect() as connection:
        assert connection.execute(text("SELECT username FROM users")).scalars().all() == ["root"]
