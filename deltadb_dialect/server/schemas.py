"""JSON Schemas kept in the store: checked when saved, compiled once, applied to writes.

A schema whose id equals a database's name validates every document written to that database.
Compiled validators are cached by the schema's text, so an edit made by another worker process
takes effect on the next write everywhere (each write reads the schema row in its transaction).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from sqlalchemy import Connection, Engine, delete, select

from deltadb_dialect.server import tables
from deltadb_dialect.server.engine import read_transaction, write_transaction
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.names import dump_json, parse_json_body

_DEFAULT_DRAFT = "http://json-schema.org/draft-07/schema#"  # DeltaDatabase's templates' draft


def check_schema(schema: Any) -> None:
    """Refuse anything that is not a valid JSON Schema with ApiError(400)."""
    if not isinstance(schema, dict | bool):
        raise ApiError(400, "a schema must be a JSON object")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise ApiError(400, f"invalid JSON Schema: {exc.message}") from None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_error(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where or '(root)'}: {error.message}"


class SchemaRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._compiled: dict[str, Validator] = {}
        self._lock = threading.Lock()

    def validator(self, schema_text: str) -> Validator:
        compiled = self._compiled.get(schema_text)
        if compiled is None:
            schema = parse_json_body(schema_text.encode("utf-8"))
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            compiled = cls(schema, format_checker=cls.FORMAT_CHECKER)
            with self._lock:
                if len(self._compiled) > 256:  # schemas change rarely; keep the cache bounded
                    self._compiled.clear()
                self._compiled[schema_text] = compiled
        return compiled

    def schema_text_in(self, conn: Connection, schema_id: str) -> str | None:
        # Driver SQL: this runs inside every write, so it skips statement construction.
        found = conn.exec_driver_sql(
            "SELECT schema FROM __deltadb_schemas WHERE id = ?", (schema_id,)
        ).first()
        return None if found is None else str(found[0])

    def validate_documents(self, conn: Connection, db: str, documents: dict[str, Any]) -> None:
        """Validate every document against the schema named like ``db``, if there is one."""
        text = self.schema_text_in(conn, db)
        if text is None:
            return
        validator = self.validator(text)
        for key, document in documents.items():
            error = jsonschema.exceptions.best_match(validator.iter_errors(document))
            if error is not None:
                raise ApiError(400, f"entity {key!r} does not match schema {db!r}: "
                               f"{describe_error(error)}")

    def errors_for(self, schema_text: str, document: Any) -> list[str]:
        validator = self.validator(schema_text)
        return [describe_error(e) for e in validator.iter_errors(document)][:50]

    # ── stored schemas ────────────────────────────────────────────────

    def get(self, schema_id: str) -> Any | None:
        with read_transaction(self.engine) as conn:
            text = self.schema_text_in(conn, schema_id)
        return None if text is None else parse_json_body(text.encode("utf-8"))

    def list(self) -> list[dict[str, str]]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(tables.schemas.c.id, tables.schemas.c.updated_at).order_by(
                    tables.schemas.c.id
                )
            ).all()
        return [{"id": row.id, "updated_at": row.updated_at} for row in rows]

    def put(self, schema_id: str, schema: Any) -> bool:
        """Store a schema; True when it is new."""
        check_schema(schema)
        text = dump_json(schema)
        with write_transaction(self.engine) as conn:
            existed = self.schema_text_in(conn, schema_id) is not None
            if existed:
                conn.execute(
                    tables.schemas.update()
                    .where(tables.schemas.c.id == schema_id)
                    .values(schema=text, updated_at=_now())
                )
            else:
                conn.execute(
                    tables.schemas.insert().values(id=schema_id, schema=text, updated_at=_now())
                )
        return not existed

    def delete(self, schema_id: str) -> bool:
        with write_transaction(self.engine) as conn:
            result = conn.execute(delete(tables.schemas).where(tables.schemas.c.id == schema_id))
        return bool(result.rowcount)
