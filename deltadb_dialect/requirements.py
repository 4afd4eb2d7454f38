"""Requirements for SQLAlchemy's and Alembic's compliance suites on ``deltadb``.

It must be importable from the package (SQLAlchemy's plugin loads it by name).
Queries run on SQLite, so capabilities are SQLite's; where the store changes
the answer it says so. Every capability closed here carries the reason.
"""

from __future__ import annotations

from typing import Any

from alembic.testing.requirements import SuiteRequirements as AlembicRequirements
from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements


def _deltadb_only(reason: str) -> Any:
    """Open on deltadb; skipped elsewhere (e.g. stock SQLite) with ``reason``."""
    return exclusions.only_on(["deltadb"], reason)


class Requirements(SuiteRequirements, AlembicRequirements):
    # Inherited and not restated: checks of the test environment rather than the
    # database (python312, python314, pep649, windows, freethreading, no_greenlet,
    # patch_library, sqlalchemy2_stubs, memory_intensive, timing_intensive), and
    # capabilities derived from the dialect's own flags (e.g. insert_returning,
    # sane_rowcount_w_returning), which the dialect states for itself.

    # --- transactions and connections ----------------------------------------------------

    @property
    def isolation_level(self) -> Any:
        return exclusions.open()

    def get_isolation_levels(self, config: Any) -> dict[str, Any]:
        levels = config.db.dialect.get_isolation_level_values(None)
        return {"default": "SERIALIZABLE", "supported": levels}

    @property
    def autocommit(self) -> Any:
        return exclusions.open()

    @property
    def savepoints(self) -> Any:
        # pysqlite sends no BEGIN before SAVEPOINT (its legacy transaction control), so
        # stock SQLite needs SQLAlchemy's event workaround; the deltadb driver begins
        # the transaction before any statement, SAVEPOINT included.
        return _deltadb_only("pysqlite does not BEGIN before SAVEPOINT")

    @property
    def second_isolation_level(self) -> Any:
        # Suite-local (see test_suite_sqlalchemy.py): a level besides the default and
        # AUTOCOMMIT to switch to. Transactions on a store are serialized, so deltadb
        # offers SERIALIZABLE only (plus AUTOCOMMIT).
        def has_second_level(config: Any) -> bool:
            levels = self.get_isolation_levels(config)
            return bool(set(levels["supported"]) - {levels["default"], "AUTOCOMMIT"})

        return exclusions.only_if(has_second_level, "one isolation level besides AUTOCOMMIT")

    @property
    def two_phase_transactions(self) -> Any:
        # SQLite has no PREPARE TRANSACTION; the store has a single commit point.
        return exclusions.closed()

    # --- SQL ----------------------------------------------------------------------------

    @property
    def boolean_col_expressions(self) -> Any:
        return exclusions.open()

    @property
    def ctes(self) -> Any:
        return exclusions.open()

    @property
    def ctes_with_update_delete(self) -> Any:
        return exclusions.open()

    @property
    def ctes_with_values(self) -> Any:
        return exclusions.open()

    @property
    def ctes_on_dml(self) -> Any:
        # SQLite allows no INSERT/UPDATE/DELETE inside a WITH clause.
        return exclusions.closed()

    @property
    def delete_from(self) -> Any:
        # SQLite has no DELETE ... USING / multi-table DELETE.
        return exclusions.closed()

    @property
    def update_from(self) -> Any:
        return exclusions.open()

    @property
    def parens_in_union_contained_select_w_limit_offset(self) -> Any:
        # SQLite does not accept a parenthesized SELECT as a member of a UNION.
        return exclusions.closed()

    @property
    def parens_in_union_contained_select_wo_limit_offset(self) -> Any:
        # SQLite does not accept a parenthesized SELECT as a member of a UNION.
        return exclusions.closed()

    @property
    def except_(self) -> Any:
        return exclusions.open()

    @property
    def intersect(self) -> Any:
        return exclusions.open()

    @property
    def mod_operator_as_percent_sign(self) -> Any:
        return exclusions.open()

    @property
    def nullsordering(self) -> Any:
        return exclusions.open()

    @property
    def order_by_label_with_expression(self) -> Any:
        return exclusions.open()

    @property
    def tuple_in(self) -> Any:
        return exclusions.open()

    @property
    def window_functions(self) -> Any:
        return exclusions.open()

    @property
    def window_range(self) -> Any:
        return exclusions.open()

    @property
    def window_range_numeric(self) -> Any:
        return exclusions.open()

    @property
    def window_range_non_numeric(self) -> Any:
        # SQLite requires a RANGE frame offset to be a number (no date intervals).
        return exclusions.closed()

    @property
    def regexp_match(self) -> Any:
        return exclusions.open()

    @property
    def regexp_replace(self) -> Any:
        # SQLite has no regexp_replace() and SQLAlchemy's SQLite compiler renders none.
        return exclusions.closed()

    @property
    def supports_distinct_on(self) -> Any:
        # DISTINCT ON is PostgreSQL's; SQLite has no such syntax.
        return exclusions.closed()

    @property
    def supports_bitwise_and(self) -> Any:
        return exclusions.open()

    @property
    def supports_bitwise_or(self) -> Any:
        return exclusions.open()

    @property
    def supports_bitwise_not(self) -> Any:
        return exclusions.open()

    @property
    def supports_bitwise_shift(self) -> Any:
        return exclusions.open()

    @property
    def supports_bitwise_xor(self) -> Any:
        # SQLite has no XOR operator (``^`` is not an operator in SQLite).
        return exclusions.closed()

    @property
    def table_value_constructor(self) -> Any:
        # SQLite cannot name a VALUES list's columns (``(VALUES ...) AS t (a, b)``).
        return exclusions.closed()

    @property
    def fetch_first(self) -> Any:
        # SQLite has no FETCH FIRST (only LIMIT/OFFSET).
        return exclusions.closed()

    @property
    def fetch_expression(self) -> Any:
        # SQLite has no FETCH FIRST (only LIMIT/OFFSET).
        return exclusions.closed()

    @property
    def fetch_no_order_by(self) -> Any:
        # SQLite has no FETCH FIRST (only LIMIT/OFFSET).
        return exclusions.closed()

    @property
    def fetch_ties(self) -> Any:
        # SQLite has no FETCH ... WITH TIES (only LIMIT/OFFSET).
        return exclusions.closed()

    @property
    def fetch_percent(self) -> Any:
        # SQLite has no FETCH ... PERCENT (only LIMIT/OFFSET).
        return exclusions.closed()

    @property
    def fetch_offset_with_options(self) -> Any:
        # Needs WITH TIES or PERCENT, which SQLite lacks.
        return exclusions.closed()

    @property
    def aggregate_order_by(self) -> Any:
        return exclusions.open()

    @property
    def dbapi_lastrowid(self) -> Any:
        return exclusions.open()

    @property
    def emulated_lastrowid_even_with_sequences(self) -> Any:
        # SQLite has no sequences.
        return exclusions.closed()

    # --- DDL ----------------------------------------------------------------------------

    @property
    def create_table_as(self) -> Any:
        return exclusions.open()

    @property
    def create_temp_table_as(self) -> Any:
        return exclusions.open()

    @property
    def table_ddl_if_exists(self) -> Any:
        return exclusions.open()

    @property
    def index_ddl_if_exists(self) -> Any:
        return exclusions.open()

    @property
    def indexes_with_expressions(self) -> Any:
        return exclusions.open()

    @property
    def views(self) -> Any:
        return exclusions.open()

    @property
    def create_or_replace_view(self) -> Any:
        # SQLite has no CREATE OR REPLACE VIEW.
        return exclusions.closed()

    @property
    def materialized_views(self) -> Any:
        # SQLite has no materialized views.
        return exclusions.closed()

    @property
    def materialized_views_reflect_pk(self) -> Any:
        # SQLite has no materialized views.
        return exclusions.closed()

    @property
    def server_defaults(self) -> Any:
        return exclusions.open()

    @property
    def expression_server_defaults(self) -> Any:
        return exclusions.open()

    @property
    def computed_columns(self) -> Any:
        return exclusions.open()

    @property
    def computed_columns_stored(self) -> Any:
        return exclusions.open()

    @property
    def computed_columns_virtual(self) -> Any:
        return exclusions.open()

    @property
    def computed_columns_reflect_persisted(self) -> Any:
        return exclusions.open()

    @property
    def computed_columns_warn_no_persisted(self) -> Any:
        # Alembic: only PostgreSQL before 18 warns about a generated column without
        # ``persisted``; SQLite accepts VIRTUAL columns.
        return exclusions.closed()

    @property
    def computed_columns_default_persisted(self) -> Any:
        # SQLite's default for a generated column is VIRTUAL, not STORED.
        return exclusions.closed()

    @property
    def identity_columns(self) -> Any:
        # SQLite has no GENERATED ... AS IDENTITY (INTEGER PRIMARY KEY is its rowid).
        return exclusions.closed()

    @property
    def identity_columns_standard(self) -> Any:
        # SQLite has no GENERATED ... AS IDENTITY.
        return exclusions.closed()

    @property
    def identity_columns_alter(self) -> Any:
        # SQLite has no GENERATED ... AS IDENTITY.
        return exclusions.closed()

    @property
    def implicitly_named_constraints(self) -> Any:
        # SQLite gives no name to a constraint declared without one.
        return exclusions.closed()

    @property
    def deferrable_fks(self) -> Any:
        return exclusions.open()

    @property
    def non_updating_cascade(self) -> Any:
        # SQLite does carry out ON UPDATE CASCADE.
        return exclusions.closed()

    @property
    def unicode_ddl(self) -> Any:
        return exclusions.open()

    @property
    def schemas(self) -> Any:
        # SQLite's schemas are ATTACHed database files: they would hold plaintext on
        # disk outside the encrypted store, so the store has one namespace, "main".
        return exclusions.closed()

    @property
    def schema_create_delete(self) -> Any:
        # No CREATE SCHEMA in SQLite (and no attached databases in the store).
        return exclusions.closed()

    @property
    def default_schema_name_switch(self) -> Any:
        # One schema only (see ``schemas``).
        return exclusions.closed()

    @property
    def implicit_default_schema(self) -> Any:
        # One schema only (see ``schemas``).
        return exclusions.closed()

    @property
    def cross_schema_fk_reflection(self) -> Any:
        # One schema only (see ``schemas``).
        return exclusions.closed()

    @property
    def schema_reflection(self) -> Any:
        # One schema only (see ``schemas``).
        return exclusions.closed()

    @property
    def sequences(self) -> Any:
        # SQLite has no sequences (an INTEGER PRIMARY KEY is its rowid).
        return exclusions.closed()

    @property
    def sequences_optional(self) -> Any:
        # SQLite has no sequences.
        return exclusions.closed()

    @property
    def denormalized_names(self) -> Any:
        # SQLite keeps names as written: there is no UPPERCASE name normalization.
        return exclusions.closed()

    @property
    def percent_schema_names(self) -> Any:
        # One schema only (see ``schemas``).
        return exclusions.closed()

    # --- reflection -------------------------------------------------------------------

    @property
    def check_constraint_reflection(self) -> Any:
        return exclusions.open()

    @property
    def inline_check_constraint_reflection(self) -> Any:
        return exclusions.open()

    @property
    def reflects_pk_names(self) -> Any:
        return exclusions.open()

    @property
    def reflect_indexes_with_expressions(self) -> Any:
        # SQLAlchemy's SQLite dialect skips expression-based indexes in reflection
        # (with a warning); the suite checks that warning instead.
        return exclusions.closed()

    @property
    def reflect_indexes_with_ascdesc_as_expression(self) -> Any:
        # SQLite reports DESC index columns as plain columns, not expressions.
        return exclusions.closed()

    @property
    def index_reflects_included_columns(self) -> Any:
        # SQLite has no INCLUDE columns in indexes.
        return exclusions.closed()

    @property
    def indexes_check_column_order(self) -> Any:
        return exclusions.open()

    @property
    def unique_constraints_reflect_as_index(self) -> Any:
        # SQLite's automatic indexes for UNIQUE constraints are not reported as indexes.
        return exclusions.closed()

    @property
    def unique_index_reflect_as_unique_constraints(self) -> Any:
        # SQLite reports a UNIQUE index as an index only.
        return exclusions.closed()

    @property
    def foreign_keys_reflect_as_index(self) -> Any:
        # SQLite creates no index for a foreign key.
        return exclusions.closed()

    @property
    def foreign_key_constraint_option_reflection_ondelete(self) -> Any:
        return exclusions.open()

    @property
    def foreign_key_constraint_option_reflection_onupdate(self) -> Any:
        return exclusions.open()

    @property
    def fk_constraint_option_reflection_ondelete_restrict(self) -> Any:
        return exclusions.open()

    @property
    def fk_constraint_option_reflection_ondelete_noaction(self) -> Any:
        return exclusions.open()

    @property
    def fk_constraint_option_reflection_onupdate_restrict(self) -> Any:
        return exclusions.open()

    @property
    def fk_ondelete_is_reflected(self) -> Any:
        return exclusions.open()

    @property
    def fk_onupdate_is_reflected(self) -> Any:
        return exclusions.open()

    @property
    def fk_deferrable(self) -> Any:
        return exclusions.open()

    @property
    def fk_initially(self) -> Any:
        # SQLite accepts INITIALLY only after DEFERRABLE; these tests emit a bare
        # ``INITIALLY DEFERRED``, a syntax error in SQLite.
        return exclusions.closed()

    @property
    def fk_deferrable_is_reflected(self) -> Any:
        return exclusions.open()

    @property
    def repeated_column_foreign_keys(self) -> Any:
        return exclusions.open()

    @property
    def repeated_remote_col_foreign_keys(self) -> Any:
        return exclusions.open()

    @property
    def comments(self) -> Any:
        # SQLite has no table or column comments (COMMENT ON / column COMMENT).
        return exclusions.closed()

    @property
    def foreign_key_constraint_name_reflection(self) -> Any:
        return exclusions.open()

    @property
    def reflects_fk_options(self) -> Any:
        return exclusions.open()

    @property
    def comment_reflection(self) -> Any:
        # SQLite has no table or column comments.
        return exclusions.closed()

    @property
    def comment_reflection_full_unicode(self) -> Any:
        # SQLite has no table or column comments.
        return exclusions.closed()

    @property
    def constraint_comment_reflection(self) -> Any:
        # SQLite has no constraint comments.
        return exclusions.closed()

    @property
    def temp_table_comment_reflection(self) -> Any:
        # SQLite has no comments.
        return exclusions.closed()

    @property
    def column_collation_reflection(self) -> Any:
        # SQLAlchemy's SQLite dialect does not reflect a column's COLLATE clause.
        return exclusions.closed()

    def get_order_by_collation(self, config: Any) -> str:
        return "NOCASE"

    @property
    def reflect_table_options(self) -> Any:
        return exclusions.open()

    @property
    def reflect_tables_no_columns(self) -> Any:
        # SQLite cannot create a table without columns.
        return exclusions.closed()

    @property
    def temp_table_names(self) -> Any:
        return exclusions.open()

    @property
    def has_temp_table(self) -> Any:
        return exclusions.open()

    @property
    def temporary_views(self) -> Any:
        return exclusions.open()

    # --- types --------------------------------------------------------------------------

    @property
    def json_type(self) -> Any:
        return exclusions.open()

    @property
    def legacy_unconditional_json_extract(self) -> Any:
        return exclusions.open()

    @property
    def json_deserializer_binary(self) -> Any:
        # JSON is stored as text: the deserializer receives str, never bytes.
        return exclusions.closed()

    @property
    def array_type(self) -> Any:
        # SQLite has no ARRAY type.
        return exclusions.closed()

    @property
    def uuid_data_type(self) -> Any:
        # SQLite has no native UUID type (Uuid is stored as CHAR(32)).
        return exclusions.closed()

    @property
    def nvarchar_types(self) -> Any:
        return exclusions.open()

    @property
    def datetime_literals(self) -> Any:
        return exclusions.open()

    @property
    def datetime_historic(self) -> Any:
        return exclusions.open()

    @property
    def date_historic(self) -> Any:
        return exclusions.open()

    @property
    def datetime_timezone(self) -> Any:
        # The deltadb dialect stores the UTC offset of an aware datetime (base.py);
        # stock SQLite drops it.
        return _deltadb_only("stock SQLite drops the UTC offset of aware datetimes")

    @property
    def datetime_timezone_historic(self) -> Any:
        # As datetime_timezone, for years before 1900.
        return self.datetime_timezone

    @property
    def time_timezone(self) -> Any:
        # SQLite's TIME type drops tzinfo, on deltadb too (only DateTime keeps it).
        return exclusions.closed()

    @property
    def datetime_interval(self) -> Any:
        # SQLite has no INTERVAL type.
        return exclusions.closed()

    @property
    def timestamp_microseconds(self) -> Any:
        return exclusions.open()

    @property
    def infinity_floats(self) -> Any:
        return exclusions.open()

    @property
    def precision_numerics_enotation_small(self) -> Any:
        return exclusions.open()

    @property
    def cast_precision_numerics_many_significant_digits(self) -> Any:
        # CAST(... AS NUMERIC) is SQLite arithmetic on a double: 15 significant digits.
        return exclusions.closed()

    @property
    def precision_numerics_retains_significant_digits(self) -> Any:
        # SQLite stores 10.000 in a NUMERIC column as the integer 10: trailing zeros of
        # a Decimal are not kept.
        return exclusions.closed()

    @property
    def precision_numerics_many_significant_digits(self) -> Any:
        # Storage is exact (base.DeltaNumeric keeps a Decimal a double cannot hold as
        # exact text), but SQLite computes in doubles: the suite's tests under this
        # flag divide such values in SQL (TrueDivTest) and get 15-16 digit results.
        return exclusions.closed()

    @property
    def float_or_double_precision_behaves_generically(self) -> Any:
        return exclusions.open()

    # --- drivers ------------------------------------------------------------------------

    @property
    def server_side_cursors(self) -> Any:
        # The driver fetches every result eagerly: a cursor never pins the store's
        # lock while the application iterates (dbapi.py).
        return exclusions.closed()

    @property
    def emulated_lastrowid(self) -> Any:
        return exclusions.open()

    @property
    def no_lastrowid_support(self) -> Any:
        # Closed because the capability is there: the driver reports cursor.lastrowid.
        return exclusions.closed()

    @property
    def async_dialect(self) -> Any:
        # Open for the asyncio driver (``--dburi deltadb+aiodeltadb:///...``); the default
        # run drives the synchronous pydeltadb driver.
        return exclusions.only_if(
            lambda config: config.db.dialect.is_async, "the synchronous driver"
        )

    @property
    def skip_autocommit_rollback(self) -> Any:
        return exclusions.open()

    # --- Alembic ------------------------------------------------------------------------

    @property
    def autoincrement_on_composite_pk(self) -> Any:
        # SQLite autoincrements only an INTEGER PRIMARY KEY (the rowid), never a
        # composite primary key.
        return exclusions.closed()

    @property
    def alter_column_type_in_place(self) -> Any:
        # Suite-local (see test_suite_alembic.py): SQLite's ALTER TABLE cannot change a
        # column's type; Alembic does it with batch mode (``batch_alter_table``).
        return exclusions.closed()

    @property
    def alter_column_server_default_in_place(self) -> Any:
        # Suite-local (see test_suite_alembic.py): SQLite's ALTER TABLE cannot change a
        # column's default; Alembic does it with batch mode (``batch_alter_table``).
        return exclusions.closed()

    @property
    def alter_column_nullable_in_place(self) -> Any:
        # Suite-local (see test_suite_alembic.py): ALTER COLUMN SET/DROP NOT NULL
        # arrived in SQLite 3.53.0 (deltadb's apsw carries a newer SQLite than the
        # standard library's sqlite3 may).
        return exclusions.only_if(
            lambda config: config.db.dialect.dbapi.sqlite_version_info >= (3, 53, 0),
            "SQLite older than 3.53.0 has no ALTER COLUMN SET/DROP NOT NULL",
        )

    @property
    def autocommit_isolation(self) -> Any:
        return exclusions.open()
