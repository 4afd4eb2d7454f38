"""DeltaDB: an encrypted JSON entity store with a SQLAlchemy dialect.

Importing this package registers the ``deltadb://`` dialect (also registered
through the ``sqlalchemy.dialects`` entry point) and its Alembic support.
"""

from typing import Any

from sqlalchemy.dialects import registry

from deltadb_dialect.lazy_alembic import register_alembic_support

__version__ = "0.1.0"

registry.register("deltadb", "deltadb_dialect.pydeltadb", "DeltaDialect_pydeltadb")
registry.register("deltadb.pydeltadb", "deltadb_dialect.pydeltadb", "DeltaDialect_pydeltadb")
registry.register("deltadb.aiodeltadb", "deltadb_dialect.aiodeltadb", "DeltaDialect_aiodeltadb")

# Alembic support is registered once Alembic is loaded, not here: Alembic and the
# dialects it imports cost several times the rest of the driver to import, which every
# process opening a store paid, migrating or not.
register_alembic_support()



def store_metrics() -> dict[str, Any]:
    """Process-wide counters of the open stores, for /metrics endpoints (no contents, no
    keys). Importing the package stays cheap: the store is loaded only when asked."""
    from deltadb_dialect.registry import store_metrics as metrics

    return metrics()


__all__ = ["store_metrics", "__version__"]
