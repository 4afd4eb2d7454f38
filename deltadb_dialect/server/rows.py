"""SQL rows as entity documents, and entity keys as primary-key values.

A SQL table is a database whose entity key is the row's primary key and whose document is the
row as a JSON object. Types that JSON lacks travel as text: datetimes, dates and times in
ISO 8601, bytes in base64, Decimal as a decimal string. A single-column key is the value as
text (``42``, ``alice``); a composite key is a JSON array of the values in primary-key column
order (``["conv-1",3]``).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, Table

from deltadb_dialect.server.errors import ApiError


def to_json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def row_to_document(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {name: to_json_value(value) for name, value in row.items()}


def _python_type(column: Column[Any]) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def _parse_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)


_FROM_TEXT = {
    dt.datetime: _parse_datetime,
    dt.date: dt.date.fromisoformat,
    dt.time: dt.time.fromisoformat,
    bytes: lambda text: base64.b64decode(text, validate=True),
    decimal.Decimal: decimal.Decimal,
    uuid.UUID: uuid.UUID,
}


def to_column_value(column: Column[Any], value: Any) -> Any:
    """Convert a JSON value to what the column's SQLAlchemy type accepts, or raise ApiError."""
    if value is None:
        return None
    wanted = _python_type(column)
    try:
        return _convert(wanted, value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ApiError(400, f"column {column.name!r}: {exc}") from None


def _convert(wanted: type | None, value: Any) -> Any:
    if wanted is None or wanted in (dict, list):
        return value
    if wanted is bool:
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if wanted is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("expected an integer")
        return value
    if wanted is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("expected a number")
        return float(value)
    if wanted is str:
        if not isinstance(value, str):
            raise TypeError("expected a string")
        return value
    parse = _FROM_TEXT.get(wanted)
    if parse is not None:
        if wanted is decimal.Decimal and isinstance(value, int | float) and not isinstance(
            value, bool
        ):
            return decimal.Decimal(str(value))
        if not isinstance(value, str):
            raise TypeError(f"expected {wanted.__name__} as text")
        return parse(value)
    return value


def _key_component_from_text(column: Column[Any], text: str) -> Any:
    wanted = _python_type(column)
    try:
        if wanted is int:
            return int(text)
        if wanted is float:
            return float(text)
        return _convert(wanted, text)
    except (ValueError, TypeError, ArithmeticError):
        raise ApiError(400, f"key is not a valid value for column {column.name!r}") from None


def primary_key_columns(table: Table) -> list[Column[Any]]:
    return list(table.primary_key.columns)


def key_to_values(table: Table, key: str) -> list[Any]:
    """The primary-key values an entity key names, in primary-key column order."""
    columns = primary_key_columns(table)
    if len(columns) == 1:
        return [_key_component_from_text(columns[0], key)]
    try:
        parts = json.loads(key)
    except ValueError:
        parts = None
    if not isinstance(parts, list) or len(parts) != len(columns):
        raise ApiError(400, f"key must be a JSON array of {len(columns)} primary-key values")
    return [
        _key_component_from_text(col, part) if isinstance(part, str) else to_column_value(col, part)
        for col, part in zip(columns, parts, strict=True)
    ]


def values_to_key(values: list[Any]) -> str:
    """The entity key of a row, from its primary-key values."""
    if len(values) == 1:
        value = to_json_value(values[0])
        return value if isinstance(value, str) else json.dumps(value)
    return json.dumps([to_json_value(v) for v in values], separators=(",", ":"))


def document_to_row(table: Table, key_values: list[Any], document: Any) -> dict[str, Any]:
    """Column values for a PUT of ``document`` under the key ``key_values``."""
    if not isinstance(document, dict):
        raise ApiError(400, f"a document for table {table.name!r} must be a JSON object")
    unknown = sorted(set(document) - set(table.columns.keys()))
    if unknown:
        raise ApiError(400, f"unknown column(s) for table {table.name!r}: {', '.join(unknown)}")
    row = {name: to_column_value(table.columns[name], value) for name, value in document.items()}
    for column, key_value in zip(primary_key_columns(table), key_values, strict=True):
        if column.name in row and row[column.name] != key_value:
            raise ApiError(400, f"column {column.name!r} does not match the entity key")
        row[column.name] = key_value
    return row


_JSON_TYPES: dict[type, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    str: {"type": "string"},
    dt.datetime: {"type": "string", "format": "date-time"},
    dt.date: {"type": "string", "format": "date"},
    dt.time: {"type": "string", "format": "time"},
    bytes: {"type": "string", "contentEncoding": "base64"},
    decimal.Decimal: {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}


def generated_schema(table: Table) -> dict[str, Any]:
    """A JSON Schema describing the table's rows as documents (informational: SQL enforces)."""
    properties: dict[str, Any] = {}
    required = []
    for column in table.columns:
        wanted = _python_type(column)
        prop = dict(_JSON_TYPES.get(wanted, {})) if wanted is not None else {}
        length = getattr(column.type, "length", None)
        if prop.get("type") == "string" and isinstance(length, int):
            prop["maxLength"] = length
        if column.nullable and "type" in prop:
            prop["type"] = [prop["type"], "null"]
        properties[column.name] = prop
        if not column.nullable and column.server_default is None and not column.primary_key:
            required.append(column.name)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": table.name,
        "title": f"row of SQL table {table.name}",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "x-deltadb-generated": True,
    }
