"""Revision 0002 upgrades a database holding 0001-era data with that data intact, and back."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_DB
from sqlalchemy import Engine, inspect, text
from test_alembic_migrations import fresh_url, run_alembic

from backend.core.db import make_engine, migration_problem

NEW_TABLES = {
    "usage_daily",
    "usage_limits",
    "rate_counters",
    "conversation_snapshots",
    "tool_executions",
}


@pytest.fixture(params=sorted({"sqlite", TEST_DB}))
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    # As alembic/env.py migrates: without foreign-key enforcement, or SQLite's batch rebuild of
    # a parent table would cascade-delete its children's rows.
    url = fresh_url(request.param, tmp_path, f"old-{secrets.token_hex(4)}")
    engine = make_engine(url, enforce_foreign_keys=False)
    run_alembic(engine, "upgrade", "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, email, hashed_password, is_active, is_admin,"
                " created_at, updated_at) VALUES (1, 'ada', 'ada@example.com', 'x', 1, 0,"
                " '2026-01-01 10:00:00', '2026-01-01 10:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO conversations (id, uuid, title, user_id, kind, pinned, archived,"
                " created_at, updated_at) VALUES (1, 'c-1', 'Old chat', 1, 'chat', 1, 0,"
                " '2026-01-01 10:00:00', '2026-01-02 10:00:00')"
            )
        )
        for position, role in enumerate(("user", "assistant")):
            connection.execute(
                text(
                    "INSERT INTO messages (id, uuid, conversation_id, role, content, position,"
                    " created_at) VALUES (:id, :uuid, 1, :role, :content, :position,"
                    " '2026-01-01 10:00:00')"
                ),
                {
                    "id": position + 1,
                    "uuid": f"m-{position}",
                    "role": role,
                    "content": f"{role} text",
                    "position": position,
                },
            )
        connection.execute(
            text(
                "INSERT INTO responses (id, message_id, model_used, tokens_total, created_at)"
                " VALUES (1, 2, 'gpt-4o', 42, '2026-01-01 10:00:00')"
            )
        )
    yield engine
    engine.dispose()


def _old_rows(engine: Engine) -> list:
    with engine.connect() as connection:
        return [
            connection.execute(
                text("SELECT uuid, title, pinned, updated_at FROM conversations")
            ).all(),
            connection.execute(text("SELECT uuid, role, content FROM messages ORDER BY id")).all(),
            connection.execute(text("SELECT model_used, tokens_total FROM responses")).all(),
            connection.execute(text("SELECT username, email FROM users")).all(),
        ]


def test_upgrade_keeps_data_and_adds_the_new_schema(old_engine: Engine) -> None:
    before = _old_rows(old_engine)
    run_alembic(old_engine, "upgrade", "head")
    assert migration_problem(old_engine) is None
    assert _old_rows(old_engine) == before
    assert set(inspect(old_engine).get_table_names()) >= NEW_TABLES
    with old_engine.connect() as connection:
        tools = connection.execute(text("SELECT tools_enabled, tool_approval FROM conversations"))
        assert tools.all() == [(1, 0)]  # existing conversations get the defaults
    run_alembic(old_engine, "check")


def test_downgrade_to_0001_keeps_the_old_data(old_engine: Engine) -> None:
    before = _old_rows(old_engine)
    run_alembic(old_engine, "upgrade", "head")
    with old_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO conversation_snapshots (uuid, conversation_id, name, message_count,"
                " data, created_at) VALUES ('s-1', 1, 'snap', 2, '{}', '2026-01-03 10:00:00')"
            )
        )
    run_alembic(old_engine, "downgrade", "0001")
    assert _old_rows(old_engine) == before
    assert not NEW_TABLES & set(inspect(old_engine).get_table_names())
    run_alembic(old_engine, "upgrade", "head")
    assert migration_problem(old_engine) is None
