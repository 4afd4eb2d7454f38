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

One difference in how statements are batched: the ORM's multi-row INSERTs that
need the generated keys back run as one ``INSERT .. VALUES (..), (..) RETURNING``
per page instead of one statement per row (see ``DeltaDialect``).
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
from sqlalchemy.sql.compiler import InsertmanyvaluesSentinelOpts

HIDDEN_TABLE_PREFIX = "__deltadb_"


def aware_text(naive: Any, value: datetime.datetime) -> str:
    """A timezone-aware datetime as the naive column text plus a fixed-width ``+HH:MM``."""
    offset = value.strftime("%z")
    return f"{naive(value.replace(tzinfo=None))}{offset[:3]}:{offset[3:]}"


class DeltaDateTime(DATETIME):
    """SQLite's DATETIME, plus exact round trips of timezone-aware values."""

    def bind_processor(self, dialect: Any) -> Any:
        naive = super().bind_processor(dialect)
        # With the default storage format, isoformat() writes the same text about five times
        # faster (timestamps are bound on every write of a typical application).
        default_format = self._storage_format == DATETIME._storage_format
        if naive is None:
            return None
        if not self.timezone:
            if not default_format:
                return naive

            def process_naive(value: Any) -> Any:
                if type(value) is datetime.datetime and value.tzinfo is None:
                    return value.isoformat(" ", "microseconds")
                return naive(value)

            return process_naive

        def process(value: Any) -> Any:
            if isinstance(value, datetime.datetime) and (offset := value.utcoffset()) is not None:
                # Fixed-width text keeps ordering and comparisons consistent.
                if default_format and not offset.microseconds and not offset.seconds % 60:
                    return value.isoformat(" ", "microseconds")
                return aware_text(naive, value)
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


# The largest rowid: a table whose largest rowid is this gets random new rowids instead.
_MAX_ROWID = 2**63 - 1

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

    # Multi-row INSERT .. RETURNING with the generated integer key as the sentinel that
    # matches returned rows to parameter sets (sorted by it, as SQLAlchemy does for
    # MariaDB). It holds on SQLite: a VALUES list is inserted in order, and each new row
    # of a rowid table whose key is the rowid gets a larger rowid than every row before
    # it. Where that could fail (INSERT triggers on the table, a key that is not the
    # rowid, rowids near their limit), _deliver_insertmanyvalues_batches checks first
    # and runs one row per statement, as the stock SQLite dialect always does.
    insertmanyvalues_implicit_sentinel = InsertmanyvaluesSentinelOpts.AUTOINCREMENT

    colspecs = {  # noqa: RUF012 - SQLAlchemy's attribute, replaced per dialect class
        **SQLiteDialect.colspecs,
        sqltypes.DateTime: DeltaDateTime,
        sqltypes.Numeric: DeltaNumeric,
        sqltypes.Float: sqltypes.Float,
    }

    def _sqlite_main_query(self, table: str, type_: str, schema: str | None,
                           sqlite_include_internal: bool) -> str:
        query: str = super()._sqlite_main_query(table, type_, schema, sqlite_include_internal)
        if sqlite_include_internal:
            return query
        hidden = " AND name NOT LIKE '~_~_deltadb~_%' ESCAPE '~'"
        return query.replace(" ORDER BY name", hidden + " ORDER BY name")

    def _deliver_insertmanyvalues_batches(self, connection: Any, cursor: Any, statement: Any,
                                          parameters: Any, generic_setinputsizes: Any,
                                          context: Any) -> Any:
        compiled = context.compiled
        imv = compiled._insertmanyvalues
        if (imv is not None and imv.implicit_sentinel and len(parameters) > 1
                and not self._keys_follow_values(connection, compiled, len(parameters))):
            context.execution_options = context.execution_options.union(
                {"insertmanyvalues_page_size": 1})
        return super()._deliver_insertmanyvalues_batches(
            connection, cursor, statement, parameters, generic_setinputsizes, context)

    def _keys_follow_values(self, connection: Any, compiled: Any, rows: int) -> bool:
        """Whether ``rows`` new rows of the statement's table get increasing keys in the
        order of its VALUES list: the sentinel is the table's one key column and the
        rowid, no INSERT trigger can add rows in between, and rowids are far from full."""
        table = compiled.statement.table
        sentinels = list(compiled._insertmanyvalues.sentinel_columns or ())
        if getattr(table, "schema", None) is not None or len(sentinels) != 1:
            return False
        name, key = table.name, sentinels[0].name
        cursor = connection.connection.cursor()
        try:
            cursor.execute(
                "SELECT (SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"
                " AND tbl_name = ?),"
                " (SELECT group_concat(name || ' ' || upper(type), ',')"
                " FROM pragma_table_info(?) WHERE pk > 0),"
                " (SELECT count(*) FROM pragma_table_list WHERE schema = 'main'"
                " AND name = ? AND wr = 0)",
                (name, name, name))
            triggers, keys, rowid_table = cursor.fetchone()
            if triggers or keys != f"{key} INTEGER" or rowid_table != 1:
                return False
            quoted = self.identifier_preparer.quote(name)
            cursor.execute(f"SELECT max(rowid) FROM main.{quoted}")  # noqa: S608 - quoted name
            largest = cursor.fetchone()[0] or 0
        except self.loaded_dbapi.Error:
            return False
        finally:
            cursor.close()
        return largest + rows < _MAX_ROWID

    @reflection.cache
    def get_isolation_level_values(self, dbapi_conn: Any) -> list[IsolationLevel]:
        return ["SERIALIZABLE", "AUTOCOMMIT"]
