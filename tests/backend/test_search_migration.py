"""Revision 0006 indexes the messages stored before it, so they are found at once."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_DB
from sqlalchemy import Engine, text
from test_alembic_migrations import fresh_url, run_alembic

from backend.core.db import make_engine


@pytest.fixture(params=sorted({"sqlite", TEST_DB} - {"postgresql"}))
def engine_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    # As alembic/env.py migrates: without foreign-key enforcement (SQLite's batch rebuilds).
    url = fresh_url(request.param, tmp_path, f"idx-{secrets.token_hex(4)}")
    engine = make_engine(url, enforce_foreign_keys=False)
    run_alembic(engine, "upgrade", "0005_mcp_servers")
    stamp = "'2026-01-01 10:00:00'"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, email, hashed_password, is_active, is_admin,"
                f" created_at, updated_at) VALUES (1, 'ada', 'ada@example.com', 'x', 1, 0,"
                f" {stamp}, {stamp})"
            )
        )
        for conversation, owner in ((1, "1"), (2, "NULL")):  # 2: an anonymous quick chat
            connection.execute(
                text(
                    "INSERT INTO conversations (id, uuid, title, user_id, kind, pinned, archived,"
                    f" created_at, updated_at) VALUES ({conversation}, 'c-{conversation}',"
                    f" 'Old chat', {owner}, 'chat', 0, 0, {stamp}, {stamp})"
                )
            )
        for number, (conversation, content) in enumerate(
            [(1, "Quokka quokka island"), (1, "ticket 142"), (2, "quokka from a stranger")], 1
        ):
            connection.execute(
                text(
                    "INSERT INTO messages (id, uuid, conversation_id, role, content, position,"
                    f" created_at) VALUES ({number}, 'm-{number}', {conversation}, 'user',"
                    f" :content, {number}, {stamp})"
                ),
                {"content": content},
            )
    yield engine
    engine.dispose()


def test_upgrade_indexes_existing_messages_and_downgrade_drops_the_index(
    engine_at_0005: Engine,
) -> None:
    run_alembic(engine_at_0005, "upgrade", "head")
    with engine_at_0005.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT message_id, conversation_id, term, occurrences, words, user_id"
                " FROM search_terms ORDER BY message_id, term"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, 1, "island", 1, 3, 1),
        (1, 1, "quokka", 2, 3, 1),
        (2, 1, "142", 1, 2, 1),
        (2, 1, "ticket", 1, 2, 1),
    ]  # the anonymous quick chat's message is not searchable, so not indexed
    run_alembic(engine_at_0005, "downgrade", "0005_mcp_servers")
    with engine_at_0005.connect() as connection:
        tables = connection.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'search_terms'")
        ).all()
    assert tables == []


def _search_indexes(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [
            row.name
            for row in connection.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'index'"
                    " AND tbl_name = 'search_terms' AND sql IS NOT NULL ORDER BY name"
                )
            )
        ]


def _postings(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT message_id, term, weight FROM search_terms"
                    " WHERE user_id = 1 AND term >= 'qu' AND term < 'qv' ORDER BY message_id"
                )
            )
        ]


def test_revision_0010_keeps_one_index_by_term_and_the_rows(engine_at_0005: Engine) -> None:
    run_alembic(engine_at_0005, "upgrade", "0009_server_settings")
    assert _search_indexes(engine_at_0005) == [
        "ix_search_terms_by_message",
        "ix_search_terms_by_weight",
        "ix_search_terms_message_id",
    ]
    before = _postings(engine_at_0005)
    assert [(m, t) for m, t, _ in before] == [(1, "quokka")]

    run_alembic(engine_at_0005, "upgrade", "head")
    assert _search_indexes(engine_at_0005) == [
        "ix_search_terms_by_message",
        "ix_search_terms_message_id",
    ]
    assert _postings(engine_at_0005) == before  # the rows stay; a range still reads them
    with engine_at_0005.connect() as connection:
        plan = " ".join(
            str(row[-1])
            for row in connection.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT message_id, weight FROM search_terms"
                    " WHERE user_id = 1 AND term = 'quokka' ORDER BY weight DESC LIMIT 20"
                )
            )
        )
    assert "COVERING INDEX ix_search_terms_by_message" in plan

    run_alembic(engine_at_0005, "downgrade", "0009_server_settings")
    assert "ix_search_terms_by_weight" in _search_indexes(engine_at_0005)
    assert _postings(engine_at_0005) == before
