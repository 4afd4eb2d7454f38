"""DeltaDB entity server: DeltaDatabase's REST API and a management UI over a DeltaDB store.

``create_app(engine_url, ...)`` builds the FastAPI application; ``python -m deltadb_dialect
serve`` runs it. The store is reached only through SQLAlchemy, so the same code serves a
``deltadb://`` store and, for development, a plain ``sqlite:///`` file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> FastAPI:
    # Imported lazily so that `import deltadb_dialect.server.cli` stays cheap for the CLI.
    from deltadb_dialect.server.app import create_app as _create_app

    return _create_app(*args, **kwargs)
