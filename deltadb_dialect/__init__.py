"""DeltaDB: an encrypted JSON entity store with a SQLAlchemy dialect.

Importing this package registers the ``deltadb://`` dialect (also registered
through the ``sqlalchemy.dialects`` entry point) and its Alembic support.
"""

from sqlalchemy.dialects import registry

from deltadb_dialect.store import store_metrics

__version__ = "0.1.0"

registry.register("deltadb", "deltadb_dialect.pydeltadb", "DeltaDialect_pydeltadb")
registry.register("deltadb.pydeltadb", "deltadb_dialect.pydeltadb", "DeltaDialect_pydeltadb")
registry.register("deltadb.aiodeltadb", "deltadb_dialect.aiodeltadb", "DeltaDialect_aiodeltadb")

try:  # Alembic is optional for users of the dialect alone
    import deltadb_dialect.alembic_impl  # noqa: F401
except ImportError:  # pragma: no cover
    pass

__all__ = ["store_metrics", "__version__"]
