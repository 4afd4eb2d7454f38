"""Databases of entities over SQLAlchemy: raw entity databases and SQL tables alike.

A database whose name is a SQL table (for example the chat app's ``users``) is that table: reads
select rows, writes go through INSERT/UPDATE so its constraints hold. Any other name is a raw
database whose entities are rows of ``__deltadb_entities``. Every request is one short
transaction; a PUT of several entities is one transaction, all or nothing.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    Text,
    cast,
    delete,
    exc,
    func,
    inspect,
    select,
    tuple_,
)

from deltadb_dialect.server import rows, tables
from deltadb_dialect.server.engine import read_transaction, write_transaction
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.names import INTERNAL_PREFIX, dump_json
from deltadb_dialect.server.schemas import UNCHECKED, SchemaRegistry

E = tables.entities
MAX_PAGE = 1000

# The two hottest statements as driver SQL (qmark, as SQLite and the deltadb DB-API use):
# they skip SQLAlchemy's statement construction, which costs more than the lookup itself.
_SELECT_DOC = 'SELECT doc FROM __deltadb_entities WHERE db = ? AND "key" = ?'
_UPSERT_DOC = ('INSERT INTO __deltadb_entities (db, "key", doc) VALUES (?, ?, ?) '
               'ON CONFLICT (db, "key") DO UPDATE SET doc = excluded.doc')


class TableCatalog:
    """The SQL tables of the store, reflected lazily and refreshed every ``ttl`` seconds.

    Migrations may add tables while the server runs; a short TTL picks them up without
    reflecting on every request.
    """

    def __init__(self, engine: Engine, ttl: float = 2.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._names: frozenset[str] = frozenset()
        self._loaded_at = -1e9
        self._tables: dict[str, Table] = {}
        self._lock = threading.Lock()

    def names(self) -> frozenset[str]:
        if time.monotonic() - self._loaded_at > self.ttl:
            with self._lock:
                if time.monotonic() - self._loaded_at > self.ttl:
                    names = frozenset(
                        n for n in inspect(self.engine).get_table_names()
                        if not n.startswith(INTERNAL_PREFIX)
                    )
                    if names != self._names:
                        self._tables = {}
                    self._names = names
                    self._loaded_at = time.monotonic()
        return self._names

    def table(self, name: str) -> Table | None:
        if name not in self.names():
            return None
        table = self._tables.get(name)
        if table is None:
            with self._lock:
                table = Table(name, MetaData(), autoload_with=self.engine)
                self._tables[name] = table
        if not table.primary_key.columns:
            return None  # without a primary key, rows have no entity key
        return table

    def sorted_tables(self) -> list[Table]:
        """Every table with a primary key, parents before children (foreign keys)."""
        metadata = MetaData()
        metadata.reflect(self.engine, only=sorted(self.names()))
        return [t for t in metadata.sorted_tables if t.primary_key.columns]


def _encode_cursor(values: list[Any]) -> str:
    text = json.dumps([rows.to_json_value(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise ApiError(400, "invalid cursor") from None
    if not isinstance(values, list) or not values:
        raise ApiError(400, "invalid cursor")
    return values


@contextmanager
def sql_errors_as_api_errors() -> Iterator[None]:
    """Map constraint failures to 409/400 with the database's message (never its parameters)."""
    try:
        yield
    except exc.IntegrityError as error:
        message = str(error.orig)
        conflict = any(word in message.upper() for word in ("UNIQUE", "PRIMARY KEY", "FOREIGN"))
        raise ApiError(409 if conflict else 400, f"constraint failed: {message}") from None
    except exc.OperationalError as error:
        if "locked" in str(error.orig).lower() or "busy" in str(error.orig).lower():
            raise ApiError(503, "the store is busy; retry") from None
        raise ApiError(400, f"rejected by the database: {error.orig}") from None
    except exc.DBAPIError as error:
        raise ApiError(400, f"rejected by the database: {error.orig}") from None
    except exc.StatementError as error:
        raise ApiError(400, f"rejected by the database: {error.orig}") from None


class EntityStore:
    def __init__(self, engine: Engine, schemas: SchemaRegistry, catalog_ttl: float = 2.0) -> None:
        self.engine = engine
        self.schemas = schemas
        self.catalog = TableCatalog(engine, catalog_ttl)

    # ── reads ─────────────────────────────────────────────────────────

    def get(self, db: str, key: str) -> str | None:
        """The entity's document as JSON text, or None."""
        table = self.catalog.table(db)
        with read_transaction(self.engine) as conn:
            if table is None:
                found = conn.exec_driver_sql(_SELECT_DOC, (db, key)).first()
                return None if found is None else str(found[0])
            row = conn.execute(
                select(table).where(*_pk_equals(table, rows.key_to_values(table, key)))
            ).mappings().first()
        return None if row is None else dump_json(rows.row_to_document(row))

    def list_keys(
        self, db: str, prefix: str, limit: int, cursor: str | None
    ) -> tuple[list[str], str | None]:
        table = self.catalog.table(db)
        after = _decode_cursor(cursor) if cursor else None
        with read_transaction(self.engine) as conn:
            if table is None:
                found = self._raw_keys(conn, db, prefix, limit + 1, after)
            else:
                found = self._table_keys(conn, table, prefix, limit + 1, after)
        page, more = found[:limit], len(found) > limit
        next_cursor = _encode_cursor(page[-1]) if more and page else None
        if table is None:
            return [values[0] for values in page], next_cursor
        return [rows.values_to_key(values) for values in page], next_cursor

    def _raw_keys(
        self, conn: Connection, db: str, prefix: str, limit: int, after: list[Any] | None
    ) -> list[list[Any]]:
        query = select(E.c.key).where(E.c.db == db)
        if prefix:
            query = query.where(E.c.key >= prefix, func.substr(E.c.key, 1, len(prefix)) == prefix)
        if after is not None:
            query = query.where(E.c.key > str(after[0]))
        return [[k] for k in conn.execute(query.order_by(E.c.key).limit(limit)).scalars()]

    def _table_keys(
        self, conn: Connection, table: Table, prefix: str, limit: int, after: list[Any] | None
    ) -> list[list[Any]]:
        pk = rows.primary_key_columns(table)
        query = select(*pk)
        if prefix:
            first = cast(pk[0], Text)
            query = query.where(func.substr(first, 1, len(prefix)) == prefix)
        if after is not None:
            if len(after) != len(pk):
                raise ApiError(400, "invalid cursor")
            values = [rows.to_column_value(col, v) for col, v in zip(pk, after, strict=True)]
            query = query.where(tuple_(*pk) > tuple_(*values) if len(pk) > 1 else pk[0] > values[0])
        return [list(r) for r in conn.execute(query.order_by(*pk).limit(limit))]

    def databases(self) -> list[dict[str, Any]]:
        table_names = self.catalog.names()
        # Reflect before the transaction (see apply_put): the catalog must not wait on the store.
        sql_tables = [t for t in map(self.catalog.table, sorted(table_names)) if t is not None]
        with read_transaction(self.engine) as conn:
            per_db = conn.execute(select(E.c.db, func.count()).group_by(E.c.db)).all()
            counts: dict[str, int] = dict(per_db)
            schema_ids = set(conn.execute(select(tables.schemas.c.id)).scalars())
            result = [
                {"name": name, "kind": "entities", "entities": count, "schema": name in schema_ids}
                for name, count in counts.items()
                if name not in table_names
            ]
            for table in sql_tables:
                count = conn.execute(select(func.count()).select_from(table)).scalar_one()
                result.append({"name": table.name, "kind": "table", "entities": count,
                               "schema": table.name in schema_ids})
        return sorted(result, key=lambda d: d["name"])

    # ── writes ────────────────────────────────────────────────────────

    def put(self, db: str, documents: dict[str, Any], dry_run: bool = False) -> None:
        """Write every document in one transaction, or none of them."""
        table = self.catalog.table(db)
        validated_with = self.schemas.prevalidate(db, documents)  # outside the transaction
        with sql_errors_as_api_errors(), write_transaction(self.engine) as conn:
            self.apply_put(conn, db, table, documents, validated_with)
            if dry_run:  # inside write_transaction there always is a transaction
                conn.get_transaction().rollback()  # type: ignore[union-attr]

    def apply_put(
        self, conn: Connection, db: str, table: Table | None, documents: dict[str, Any],
        validated_with: Any = UNCHECKED,
    ) -> None:
        """Validate and write ``documents`` inside the caller's transaction.

        ``table`` is ``catalog.table(db)``, looked up by the caller *before* the transaction:
        the catalog may reflect, which takes the store, and must never wait on the store while
        this transaction holds it (the two would deadlock until the lock timeout).
        ``validated_with`` is the schema text ``documents`` were validated against before the
        transaction (``SchemaRegistry.prevalidate``); they are validated here only if the
        stored schema has changed since.
        """
        self.schemas.validate_documents(conn, db, documents, validated_with)
        if table is None:
            self._put_raw(conn, db, documents)
        else:
            self._put_rows(conn, table, documents)

    def _put_raw(self, conn: Connection, db: str, documents: dict[str, Any]) -> None:
        values = [(db, key, dump_json(doc)) for key, doc in documents.items()]
        if len(values) == 1:
            conn.exec_driver_sql(_UPSERT_DOC, values[0])
        else:
            conn.exec_driver_sql(_UPSERT_DOC, values)

    def _put_rows(self, conn: Connection, table: Table, documents: dict[str, Any]) -> None:
        for key, document in documents.items():
            key_values = rows.key_to_values(table, key)
            row = rows.document_to_row(table, key_values, document)
            where = _pk_equals(table, key_values)
            changes = {k: v for k, v in row.items() if k not in table.primary_key.columns}
            exists = conn.execute(select(func.count()).select_from(table).where(*where)).scalar()
            if exists and changes:
                conn.execute(table.update().where(*where).values(changes))
            elif not exists:
                conn.execute(table.insert().values(row))

    def delete(self, db: str, key: str) -> bool:
        table = self.catalog.table(db)
        with sql_errors_as_api_errors(), write_transaction(self.engine) as conn:
            if table is None:
                result = conn.execute(delete(E).where(E.c.db == db, E.c.key == key))
            else:
                where = _pk_equals(table, rows.key_to_values(table, key))
                result = conn.execute(delete(table).where(*where))
        return bool(result.rowcount)


def _pk_equals(table: Table, values: list[Any]) -> list[Any]:
    return [col == value for col, value in
            zip(rows.primary_key_columns(table), values, strict=True)]


__all__ = ["EntityStore", "TableCatalog"]
