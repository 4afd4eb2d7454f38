"""Alembic support: the ``deltadb`` implementation is SQLite's, plus a migration lock.

Alembic finds its implementation by ``dialect.name``. Everything SQLite
needs (batch mode for ALTERs SQLite cannot do, compare rules) is inherited.
Two things are added:

* Foreign-key enforcement is turned off for the migration's transaction, so a
  batch rebuild of a parent table (copy, DROP, rename) never deletes child
  rows through ON DELETE CASCADE; the store checks ``foreign_key_check``
  before committing, so a migration cannot leave dangling references.
* The migration runs inside one store transaction, which the store
  serializes across processes: two ``alembic upgrade head`` at once run one
  after the other, and the second finds the work done.
"""

from __future__ import annotations

from alembic.ddl.base import ColumnName, ColumnNullable, ColumnType, RenameTable
from alembic.ddl.sqlite import SQLiteImpl
from sqlalchemy.ext.compiler import compiles


class DeltaImpl(SQLiteImpl):
    __dialect__ = "deltadb"
    transactional_ddl = True

    def start_migrations(self) -> None:
        super().start_migrations()
        # The driver applies this to the migration's own transaction (it is issued
        # before the transaction's first statement, where SQLite honours it).
        self._exec("PRAGMA foreign_keys=OFF")
        # Take the store now, before Alembic reads the current revision: a second
        # `alembic upgrade` waits here until the first has committed, then finds
        # the work done (the migration lock).
        self._exec("BEGIN")


# Alembic registers these DDL renderings for "sqlite" only; reuse them for deltadb.
for construct in (RenameTable, ColumnName, ColumnNullable, ColumnType):
    registry = getattr(construct, "_compiler_dispatcher", None)
    specs = getattr(registry, "specs", {}) if registry is not None else {}
    if "sqlite" in specs and "deltadb" not in specs:
        compiles(construct, "deltadb")(specs["sqlite"])
