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
    """Validates documents of one table version; compiled once, called per row.

    Two compiled forms of the same schema: ``_accept``, generated here for the few shapes
    ``table_schema`` produces, only ever says "valid" for a document that is valid (it is
    stricter where that is simpler: exact types, no integral floats); anything it does
    not accept goes to fastjsonschema, which decides and explains. A schema using any
    keyword outside those shapes gets no fast form at all.
    """

    def __init__(self, table: str, schema: dict[str, Any]) -> None:
        self.table = table
        self.schema = schema
        self._check: Callable[[Any], Any] = fastjsonschema.compile(schema)
        self._accept: Callable[[Any], bool] | None = compile_acceptor(schema)

    def __call__(self, document: dict[str, Any]) -> None:
        accept = self._accept
        if accept is not None and accept(document):
            return
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


# --- the fast acceptor ------------------------------------------------------------------

_ANNOTATIONS = {"$schema", "$id", "title", "x-deltadb-version", "description"}
_TYPE_TESTS = {"integer": "t is int", "string": "t is str", "null": "v is None",
               "number": "(t is int or t is float)"}


class _Unsupported(Exception):
    pass


def _column_test(schema: Any, constants: dict[str, Any]) -> str:
    """A Python expression over ``v`` (the value) and ``t`` (its type), true only if valid."""
    if not isinstance(schema, dict):
        raise _Unsupported
    keys = set(schema)
    if not keys:
        return "True"
    if keys == {"anyOf"} and isinstance(schema["anyOf"], list) and schema["anyOf"]:
        return "(" + " or ".join(_column_test(s, constants) for s in schema["anyOf"]) + ")"
    if keys == {"enum"}:
        values = schema["enum"]
        if not isinstance(values, list) or not all(type(x) is str for x in values):
            raise _Unsupported
        name = f"_enum{len(constants)}"
        constants[name] = frozenset(values)
        return f"(t is str and v in {name})"
    if schema == {"type": "object", "required": ["$b64"],
                  "properties": {"$b64": {"type": "string"}}, "additionalProperties": False}:
        return '(t is dict and len(v) == 1 and type(v.get("$b64")) is str)'
    if schema == {"type": "object", "required": ["$float"],
                  "properties": {"$float": {"enum": ["nan", "inf", "-inf"]}},
                  "additionalProperties": False}:
        return ('(t is dict and len(v) == 1 and type(v.get("$float")) is str'
                ' and v["$float"] in ("nan", "inf", "-inf"))')
    if "type" in keys and keys <= {"type", "maxLength"}:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not kinds or any(k not in _TYPE_TESTS for k in kinds):
            raise _Unsupported
        if "maxLength" in keys:
            limit = schema["maxLength"]
            if kinds != ["string"] or type(limit) is not int:
                raise _Unsupported
            return f"(t is str and len(v) <= {limit})"
        return "(" + " or ".join(_TYPE_TESTS[k] for k in kinds) + ")"
    raise _Unsupported


def compile_acceptor(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    """A fast "certainly valid" test for a table schema, or None if it has other keywords."""
    try:
        if set(schema) - _ANNOTATIONS != {"type", "properties", "required",
                                          "additionalProperties"}:
            raise _Unsupported
        properties = schema["properties"]
        if (schema["type"] != "object" or schema["additionalProperties"] is not False
                or not isinstance(properties, dict)
                or sorted(schema["required"]) != sorted(properties)):
            raise _Unsupported  # every property required, nothing else allowed
        constants: dict[str, Any] = {"_KEYS": frozenset(properties)}
        lines = ["def accept(d):",
                 "    if type(d) is not dict or d.keys() != _KEYS:",
                 "        return False"]
        for name, column in properties.items():
            if type(name) is not str:
                raise _Unsupported
            test = _column_test(column, constants)
            if test == "True":
                continue
            lines.append(f"    v = d[{name!r}]")
            lines.append("    t = type(v)")
            lines.append(f"    if not {test}:")
            lines.append("        return False")
        lines.append("    return True")
        namespace = dict(constants)
        exec("\n".join(lines), namespace)  # noqa: S102 - code built from the schema's shape
        accept: Callable[[Any], bool] = namespace["accept"]
        return accept
    except (_Unsupported, KeyError, TypeError):
        return None


def compile_row_builder(schema: dict[str, Any],
                        stored_columns: list[str]) -> Callable[[Any], dict[str, Any] | None] | None:
    """The capture hot path for one table: a stored row (tuple, ``stored_columns`` order)
    -> its document, only when that document is certainly valid (the acceptor's tests,
    taken positionally) and needs no encoding (no blob, no non-finite float); else None,
    and the caller builds and validates the document the general way. None: no fast form.
    """
    try:
        properties = schema["properties"]
        if compile_acceptor(schema) is None or set(stored_columns) != set(properties) or (
                len(stored_columns) != len(properties)):
            return None
        constants: dict[str, Any] = {}
        names = [f"v{i}" for i in range(len(stored_columns))]
        lines = ["def build(row):",
                 f"    {', '.join(names)}{',' if len(names) == 1 else ''} = row"]
        for name, column in zip(names, stored_columns, strict=True):
            test = _column_test(properties[column], constants)
            if "dict" in test:  # encoded values (blobs, odd floats) take the general path
                test = test.replace("t is dict and", "False and")
            lines.append(f"    v = {name}")
            lines.append("    t = type(v)")
            if test != "True":
                lines.append(f"    if not {test}:")
                lines.append("        return None")
            lines.append("    if t is float and v - v != 0 or t is bytes or t is dict:")
            lines.append("        return None  # needs encoding")
        pairs = ", ".join(f"{column!r}: {name}" for name, column in
                          zip(names, stored_columns, strict=True))
        lines.append(f"    return {{{pairs}}}")
        namespace = dict(constants)
        exec("\n".join(lines), namespace)  # noqa: S102 - code built from the schema's shape
        build: Callable[[Any], dict[str, Any] | None] = namespace["build"]
        return build
    except (_Unsupported, KeyError, TypeError):
        return None
