"""The server's internal tables, created with IF NOT EXISTS at start-up.

The dialect hides every ``__deltadb_*`` table from reflection (so applications' Alembic
autogenerate ignores them), hence these are declared here and never reflected.
"""

from __future__ import annotations

from sqlalchemy import Column, Engine, Index, Integer, MetaData, Table, Text
from sqlalchemy.schema import CreateIndex, CreateTable

internal_metadata = MetaData()

# One row per entity of a raw (non-SQL-table) database; the storage layer persists each row
# as the encrypted entity (db, key) whose document is ``doc`` (JSON text).
entities = Table(
    "__deltadb_entities",
    internal_metadata,
    Column("db", Text, primary_key=True, nullable=False),
    Column("key", Text, primary_key=True, nullable=False),
    Column("doc", Text, nullable=False),
)

schemas = Table(
    "__deltadb_schemas",
    internal_metadata,
    Column("id", Text, primary_key=True),
    Column("schema", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)

api_keys = Table(
    "__deltadb_api_keys",
    internal_metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("secret_hash", Text, nullable=False),  # sha256 hex of the secret part
    Column("permissions", Text, nullable=False),  # JSON list
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=True),
    Column("created_by", Text, nullable=True),
    Column("databases", Text, nullable=True),  # JSON list of names/prefix* the key may use
)

tokens = Table(
    "__deltadb_tokens",
    internal_metadata,
    Column("token_hash", Text, primary_key=True),  # sha256 hex; the token itself is never kept
    Column("client_id", Text, nullable=False),
    Column("permissions", Text, nullable=False),  # JSON list
    Column("api_key_id", Text, nullable=True),
    Column("databases", Text, nullable=True),  # copied from the API key; NULL: every database
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
)
Index("__deltadb_tokens_by_key", tokens.c.api_key_id)

workers = Table(
    "__deltadb_workers",
    internal_metadata,
    Column("worker_id", Text, primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("host", Text, nullable=False),
    Column("address", Text, nullable=True),
    Column("started_at", Text, nullable=False),
    Column("last_seen", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("requests", Integer, nullable=False, default=0),
)


def create_internal_tables(engine: Engine) -> None:
    """Create the internal tables unless they exist; safe to run from several processes."""
    with engine.begin() as conn:
        for table in internal_metadata.sorted_tables:
            conn.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                conn.execute(CreateIndex(index, if_not_exists=True))
