"""Revision 0006_message_tree turns a store's existing conversations into single-branch trees."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_DB
from sqlalchemy import Engine, text
from test_alembic_migrations import fresh_url, run_alembic

from backend.core.db import make_engine, migration_problem
from backend.services import message_tree

BEFORE = "0005_mcp_servers"
STAMP = "'2026-01-01 10:00:00'"


def _insert_chat(connection, *, conversation_id: int, roles: list[str]) -> None:  # noqa: ANN001
    connection.execute(
        text(
            "INSERT INTO conversations (id, uuid, title, user_id, kind, pinned, archived,"
            " tools_enabled, tool_approval, created_at, updated_at) VALUES"
            f" (:id, :uuid, 'Old chat', 1, 'chat', 0, 0, 1, 0, {STAMP}, {STAMP})"
        ),
        {"id": conversation_id, "uuid": f"c-{conversation_id}"},
    )
    for position, role in enumerate(roles):
        message_id = conversation_id * 100 + position
        connection.execute(
            text(
                "INSERT INTO messages (id, uuid, conversation_id, role, content, position,"
                f" created_at) VALUES (:id, :uuid, :conversation, :role, :content, :position,"
                f" {STAMP})"
            ),
            {
                "id": message_id,
                "uuid": f"m-{message_id}",
                "conversation": conversation_id,
                "role": role,
                "content": f"{role} {position}",
                "position": position,
            },
        )
        if role == "assistant":
            connection.execute(
                text(
                    "INSERT INTO responses (message_id, model_used, tokens_total, created_at)"
                    f" VALUES (:id, 'gpt-4o', 42, {STAMP})"
                ),
                {"id": message_id},
            )


@pytest.fixture(params=sorted({"sqlite", TEST_DB}))
def flat_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store at the revision before trees, holding flat histories (one with a question
    whose answer failed, so two questions follow each other)."""
    # As alembic/env.py migrates: without foreign-key enforcement (SQLite's batch rebuilds).
    url = fresh_url(request.param, tmp_path, f"flat-{secrets.token_hex(4)}")
    engine = make_engine(url, enforce_foreign_keys=False)
    run_alembic(engine, "upgrade", BEFORE)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, email, hashed_password, is_active, is_admin,"
                f" created_at, updated_at) VALUES (1, 'ada', 'ada@example.com', 'x', 1, 0,"
                f" {STAMP}, {STAMP})"
            )
        )
        _insert_chat(connection, conversation_id=1, roles=["user", "assistant", "user", "user"])
        _insert_chat(connection, conversation_id=2, roles=["user", "assistant"])
        _insert_chat(connection, conversation_id=3, roles=[])
    yield engine
    engine.dispose()


def test_existing_histories_become_single_branches(flat_store: Engine) -> None:
    run_alembic(flat_store, "upgrade", "head")
    assert migration_problem(flat_store) is None
    with flat_store.connect() as connection:
        parents = connection.execute(text("SELECT id, parent_id FROM messages ORDER BY id")).all()
        shown = connection.execute(
            text("SELECT id, current_message_uuid FROM conversations ORDER BY id")
        ).all()
        responses = connection.execute(text("SELECT count(*) FROM responses")).scalar_one()
        path = message_tree.path_ids(connection=connection, leaf_id=103)
        context = message_tree.read_context(connection=connection, leaf_id=103)
    assert parents == [(100, None), (101, 100), (102, 101), (103, 102), (200, None), (201, 200)]
    assert shown == [(1, "m-103"), (2, "m-201"), (3, None)]
    assert responses == 2  # the answers' metadata is intact
    assert path == [100, 101, 102, 103]
    assert [m["content"] for m in context] == ["user 0", "assistant 1", "user 2", "user 3"]


def test_downgrade_keeps_every_message(flat_store: Engine) -> None:
    run_alembic(flat_store, "upgrade", "head")
    run_alembic(flat_store, "downgrade", BEFORE)
    with flat_store.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
        responses = connection.execute(text("SELECT count(*) FROM responses")).scalar_one()
    assert (count, responses) == (6, 2)
    run_alembic(flat_store, "upgrade", "head")
    assert migration_problem(flat_store) is None
