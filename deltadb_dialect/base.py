"""The ``deltadb`` dialect: SQLite's SQL over the encrypted store.

Queries run on SQLite (an in-memory replica), so the dialect is SQLite's
with three differences in semantics:

* Timezone-aware ``DateTime(timezone=True)`` values keep their UTC offset
  (stock SQLite drops it), and ``Numeric`` binds ``Decimal`` as text, so the
  column's NUMERIC affinity stores whole numbers up to 64 bits exactly (a double
  would round them). Other decimals keep 15 significant digits: SQLite converts
  such text to REAL (docs/COMPLIANCE.md, "Known limits").
* The store's own bookkeeping tables (``__deltadb_*``) are hidden from
  reflection, so an application's Alembic autogenerate never sees them.
* Transactions are serialized by the store (see ``store.py``): the isolation
  level is SERIALIZABLE.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from sqlalchemy import types as sqltypes
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import reflection
from sqlalchemy.engine.interfaces import IsolationLevel

HIDDEN_TABLE_PREFIX = "__deltadb_"


class DeltaDateTime(DATETIME):
    """SQLite's DATETIME, plus exact round trips of timezone-aware values."""

    def bind_processor(self, dialect: Any) -> Any:
        naive = super().bind_processor(dialect)
        if not self.timezone or naive is None:
            return naive

        def process(value: Any) -> Any:
            if isinstance(value, datetime.datetime) and value.utcoffset() is not None:
                # Fixed-width text keeps ordering and comparisons consistent.
                offset = value.strftime("%z")
                return f"{naive(value.replace(tzinfo=None))}{offset[:3]}:{offset[3:]}"
            return naive(value)

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if not self.timezone:
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> Any:
            if value is None or isinstance(value, datetime.datetime):
                return value
            return datetime.datetime.fromisoformat(value)

        return process


_WIDE = decimal.Context(prec=200)  # quantizing never fails for a column's declared scale


def _fits_a_double(value: decimal.Decimal) -> bool:
    return decimal.Decimal(repr(float(value))) == value


class DeltaNumeric(sqltypes.Numeric):
    """Decimals stored exactly.

    A Decimal that a double holds exactly is bound as its shortest text, which
    NUMERIC affinity turns into that INTEGER or REAL, so SQL compares, sorts and
    sums it as a number; reading it back goes through the same shortest text,
    never through a rounded ``%f``. Any other Decimal would be rounded by that
    conversion, so it is bound as its exact text in a BLOB, which affinity leaves
    alone (such values sort after all numbers; arithmetic still reads them).
    """

    def bind_processor(self, dialect: Any) -> Any:
        def process(value: Any) -> Any:
            if isinstance(value, decimal.Decimal):
                if not value.is_finite():
                    return float(value)
                return str(value) if _fits_a_double(value) else str(value).encode("ascii")
            return value

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        as_decimal = self.asdecimal
        scale = self._effective_decimal_return_scale
        step = decimal.Decimal(1).scaleb(-scale) if scale is not None else None

        def exact(text: str) -> decimal.Decimal:
            number = decimal.Decimal(text)
            if step is None or not number.is_finite():
                return number
            return number.quantize(step, context=_WIDE)

        def process(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, bytes):
                value = value.decode("ascii")
            if not as_decimal:
                return float(value)
            if isinstance(value, float):
                return exact(repr(value))
            return exact(str(value))

        return process


class DeltaDialect(SQLiteDialect):
    name = "deltadb"
    supports_statement_cache = True
    # Multi-row UPDATE/DELETE counts are summed per parameter set by the driver.
    supports_sane_multi_rowcount = True

    colspecs = {
        **SQLiteDialect.colspecs,
        sqltypes.DateTime: DeltaDateTime,
        sqltypes.Numeric: DeltaNumeric,
        sqltypes.Float: sqltypes.Float,
    }

    def _sqlite_main_query(self, table: str, type_: str, schema: str | None,
                           sqlite_include_internal: bool) -> str:
        query = super()._sqlite_main_query(table, type_, schema, sqlite_include_internal)
        if sqlite_include_internal:
            return query
        hidden = " AND name NOT LIKE '~_~_deltadb~_%' ESCAPE '~'"
        return query.replace(" ORDER BY name", hidden + " ORDER BY name")

    @reflection.cache
    def get_isolation_level_values(self, dbapi_conn: Any) -> list[IsolationLevel]:
        return ["SERIALIZABLE", "AUTOCOMMIT"]
