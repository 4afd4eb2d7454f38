"""JSON Schemas generated from table definitions, and validation of every row.

Each table's schema (draft 2020-12) is derived from SQLite's view of the
table: declared type, NOT NULL, (VAR)CHAR lengths, and ``IN (...)`` CHECK
constraints (how SQLAlchemy renders ``Enum(create_constraint=True)``).
Documents use the store's JSON encoding of SQLite values: integers and
text as themselves, blobs as ``{"$b64": ...}``, non-finite floats as
``{"$float": "nan"|"inf"|"-inf"}``.

Validation runs on every written row before encryption. A compiled validator
(fastjsonschema) does the hot-path check in a couple of microseconds;
``jsonschema`` checks the generated schemas themselves and explains failures.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import jsonschema

from deltadb_dialect.errors import SchemaViolationError

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ROWID = "_rowid_"

_BLOB = {"type": "object", "required": ["$b64"], "properties": {"$b64": {"type": "string"}},
         "additionalProperties": False}
_ODD_FLOAT = {"type": "object", "required": ["$float"],
              "properties": {"$float": {"enum": ["nan", "inf", "-inf"]}},
              "additionalProperties": False}
_LENGTH = re.compile(r"\(\s*(\d+)\s*(?:,\s*\d+\s*)?\)")


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    declared_type: str
    not_null: bool
    pk_position: int  # 0 when not part of the primary key


def column_schema(column: ColumnInfo, enum_values: list[str] | None) -> dict[str, Any]:
    """The JSON Schema of one column's stored value."""
    declared = column.declared_type.upper()
    if enum_values:
        schema: dict[str, Any] = {"enum": list(enum_values)}
    elif "INT" in declared:
        schema = {"type": "integer"}
    elif any(word in declared for word in ("CHAR", "CLOB", "TEXT")):
        schema = {"type": "string"}
        length = _LENGTH.search(declared)
        if length and "CHAR" in declared:
            schema["maxLength"] = int(length.group(1))
    elif "BLOB" in declared:
        schema = dict(_BLOB)
    elif any(word in declared for word in ("REAL", "FLOA", "DOUB")):
        schema = {"anyOf": [{"type": "number"}, _ODD_FLOAT]}
    elif declared in ("", "ANY"):
        schema = {}
    elif any(word in declared for word in ("DATE", "TIME")):
        # SQLAlchemy stores dates and times as ISO text; SQLite also allows numbers.
        schema = {"type": ["string", "number"]}
    elif "BOOL" in declared:
        schema = {"type": "integer"}
    else:  # NUMERIC affinity (NUMERIC, DECIMAL, JSON...): numbers, text, or exact decimals
        schema = {"anyOf": [{"type": ["number", "string"]}, _ODD_FLOAT, _BLOB]}
    if not column.not_null and schema:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def enum_constraints(create_sql: str) -> dict[str, list[str]]:
    """Columns limited by ``CHECK (col IN ('a', 'b'))`` in a CREATE TABLE statement."""
    found: dict[str, list[str]] = {}
    pattern = re.compile(r"CHECK\s*\(\s*\"?(\w+)\"?\s+IN\s*\(([^)]*)\)\s*\)", re.IGNORECASE)
    for column, values in pattern.findall(create_sql or ""):
        items = re.findall(r"'((?:[^']|'')*)'", values)
        if items:
            found[column] = [item.replace("''", "'") for item in items]
    return found


def table_schema(table: str, columns: list[ColumnInfo], *, create_sql: str,
                 rowid_key: bool, version: int) -> dict[str, Any]:
    enums = enum_constraints(create_sql)
    properties = {c.name: column_schema(c, enums.get(c.name)) for c in columns}
    required = [c.name for c in columns]
    if rowid_key:
        properties[ROWID] = {"type": "integer"}
        required.append(ROWID)
    schema = {
        "$schema": DIALECT,
        "$id": f"deltadb:table/{table}/v{version}",
        "title": table,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "x-deltadb-version": version,
    }
    jsonschema.validators.validator_for(schema).check_schema(schema)
    return schema


class RowValidator:
    """Validates documents of one table version; compiled once, called per row."""

    def __init__(self, table: str, schema: dict[str, Any]) -> None:
        self.table = table
        self.schema = schema
        self._check: Callable[[Any], Any] = fastjsonschema.compile(schema)

    def __call__(self, document: dict[str, Any]) -> None:
        try:
            self._check(document)
        except fastjsonschema.JsonSchemaException:
            raise SchemaViolationError(self._explain(document)) from None

    def _explain(self, document: dict[str, Any]) -> str:
        validator = jsonschema.Draft202012Validator(self.schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        where = "/".join(str(p) for p in error.absolute_path) if error else "?"
        detail = error.message if error else "invalid"
        # The message names the table and column, never the offending value.
        detail = detail if len(detail) < 120 else detail[:117] + "..."
        return f"row of table {self.table!r} violates its schema at column {where!r}: " + (
            _redact(detail, document)
        )


def _redact(detail: str, document: dict[str, Any]) -> str:
    for value in document.values():
        if isinstance(value, str) and len(value) > 3 and value in detail:
            detail = detail.replace(value, "<value>")
    return detail
