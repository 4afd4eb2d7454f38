"""Export every database's entities as decrypted JSON lines, and import them back.

Line shapes: ``{"schema_id": ID, "schema": {...}}`` for stored schemas (written first), then
``{"database": DB, "key": KEY, "document": DOC}`` for entities, SQL tables in foreign-key
order (parents first) so that an import into an empty store satisfies the constraints.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from sqlalchemy import select

from deltadb_dialect.server import rows, tables
from deltadb_dialect.server.engine import make_engine, read_transaction
from deltadb_dialect.server.names import check_database, check_key, dump_json
from deltadb_dialect.server.schemas import SchemaRegistry
from deltadb_dialect.server.store import EntityStore
from deltadb_dialect.server.tables import create_internal_tables

BATCH = 500  # entities per import transaction


def open_store(engine_url: str) -> EntityStore:
    engine = make_engine(engine_url)
    create_internal_tables(engine)
    return EntityStore(engine, SchemaRegistry(engine), catalog_ttl=0.0)


def export_lines(store: EntityStore) -> Iterator[dict[str, Any]]:
    for schema in store.schemas.list():
        yield {"schema_id": schema["id"], "schema": store.schemas.get(schema["id"])}
    table_names = store.catalog.names()
    for table in store.catalog.sorted_tables():
        pk = rows.primary_key_columns(table)
        with read_transaction(store.engine) as conn:
            for row in conn.execute(select(table).order_by(*pk)).mappings():
                key = rows.values_to_key([row[c.name] for c in pk])
                yield {"database": table.name, "key": key,
                       "document": rows.row_to_document(row)}
    E = tables.entities
    with read_transaction(store.engine) as conn:
        everything = select(E.c.db, E.c.key, E.c.doc).order_by(E.c.db, E.c.key)
        for db, key, doc in conn.execute(everything):
            if db not in table_names:
                yield {"database": db, "key": key, "document": json.loads(doc)}


def write_export(store: EntityStore, out: TextIO) -> int:
    count = 0
    for line in export_lines(store):
        out.write(dump_json(line) + "\n")
        count += 1
    return count


def import_lines(store: EntityStore, lines: Iterable[str]) -> dict[str, int]:
    """Write the lines back; consecutive entities of one database go in batches of BATCH."""
    counts = {"schemas": 0, "entities": 0}
    pending_db: str | None = None
    pending: dict[str, Any] = {}

    def flush() -> None:
        if pending_db is not None and pending:
            store.put(pending_db, dict(pending))
            counts["entities"] += len(pending)
        pending.clear()

    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"line {number}: invalid JSON ({exc})") from None
        if not isinstance(item, dict):
            raise ValueError(f"line {number}: expected a JSON object")
        if "schema_id" in item:
            flush()
            store.schemas.put(check_database(item["schema_id"]), item.get("schema"))
            counts["schemas"] += 1
            continue
        db, key = item.get("database"), item.get("key")
        if not isinstance(db, str) or not isinstance(key, str) or "document" not in item:
            raise ValueError(f"line {number}: expected database, key and document")
        check_database(db)
        check_key(key)
        if db != pending_db or len(pending) >= BATCH:
            flush()
            pending_db = db
        pending[key] = item["document"]
    flush()
    return counts
