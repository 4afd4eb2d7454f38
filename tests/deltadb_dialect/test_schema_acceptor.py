"""The fast row acceptor never accepts a document its JSON Schema rejects."""

from __future__ import annotations

import itertools
import math
import random
from decimal import Decimal

import jsonschema
import pytest

from deltadb_dialect.errors import SchemaViolationError
from deltadb_dialect.schema import ColumnInfo, RowValidator, compile_acceptor, table_schema

DECLARED = ["INTEGER", "BIGINT", "VARCHAR(5)", "CHAR(2)", "TEXT", "CLOB", "BLOB", "REAL",
            "FLOAT", "DOUBLE", "", "ANY", "DATETIME", "DATE", "TIME", "BOOLEAN", "NUMERIC",
            "DECIMAL(10, 2)", "JSON", "VARCHAR(3)"]

VALUES = [None, 0, 1, -5, 2**63 - 1, True, False, 1.0, 2.5, -0.0, math.nan, math.inf, "",
          "a", "ab", "abc", "abcdef", "é" * 3, "x" * 40, "no", "yes", b"raw",
          {"$b64": "AAE="}, {"$b64": 5}, {"$b64": "AA", "x": 1}, {"$float": "nan"},
          {"$float": "inf"}, {"$float": "-inf"}, {"$float": "NaN"}, {"$float": 1},
          {}, [], ["a"], Decimal("1.5"), {"$b64": None}]


def _schemas():
    for declared, not_null in itertools.product(DECLARED, [True, False]):
        columns = [ColumnInfo("id", "INTEGER", True, 1), ColumnInfo("c", declared, not_null, 0)]
        yield table_schema("t", columns, create_sql="", rowid_key=False, version=1)
    enum_sql = "CREATE TABLE t (id INTEGER, c VARCHAR(5) CHECK (c IN ('yes', 'no')))"
    for not_null in (True, False):
        columns = [ColumnInfo("id", "INTEGER", True, 1), ColumnInfo("c", "VARCHAR(5)",
                                                                    not_null, 0)]
        yield table_schema("t", columns, create_sql=enum_sql, rowid_key=False, version=1)
    yield table_schema("t", [ColumnInfo("c", "TEXT", False, 0)], create_sql="",
                       rowid_key=True, version=1)


@pytest.mark.parametrize("schema", list(_schemas()), ids=lambda s: str(s["properties"]))
def test_acceptor_is_never_more_lenient_than_json_schema(schema) -> None:
    accept = compile_acceptor(schema)
    assert accept is not None, "every generated table schema has a fast form"
    checker = jsonschema.Draft202012Validator(schema)
    names = list(schema["properties"])
    documents = [dict(zip(names, combo, strict=True))
                 for combo in itertools.product(VALUES, repeat=len(names))
                 ] if len(names) <= 2 else []
    rng = random.Random(7)
    documents += [{n: rng.choice(VALUES) for n in names} for _ in range(300)]
    documents += [{}, {"id": 1}, {**documents[0], "extra": 1}, [], "doc", None]
    accepted = 0
    for document in documents:
        if accept(document):
            accepted += 1
            assert checker.is_valid(document), document
    assert accepted  # it does accept valid rows


def test_other_keywords_get_no_fast_form() -> None:
    base = table_schema("t", [ColumnInfo("id", "INTEGER", True, 1)], create_sql="",
                        rowid_key=False, version=1)
    assert compile_acceptor(base) is not None
    for change in ({"minProperties": 1}, {"additionalProperties": True},
                   {"properties": {"id": {"type": "integer", "minimum": 0}}},
                   {"properties": {"id": {"pattern": "x"}}}, {"required": []}):
        assert compile_acceptor({**base, **change}) is None


def test_rows_the_acceptor_declines_are_still_judged_by_the_schema() -> None:
    schema = table_schema("t", [ColumnInfo("id", "INTEGER", True, 1),
                                ColumnInfo("c", "VARCHAR(3)", False, 0)],
                          create_sql="", rowid_key=False, version=1)
    validator = RowValidator("t", schema)
    validator({"id": 1, "c": "abc"})
    validator({"id": 2.0, "c": None})  # an integral float: valid, though not fast
    with pytest.raises(SchemaViolationError, match="column 'c'"):
        validator({"id": 1, "c": "abcd"})
    with pytest.raises(SchemaViolationError):
        validator({"id": 1, "c": "a", "other": 1})
