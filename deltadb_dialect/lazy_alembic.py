"""Alembic's ``deltadb`` implementation, registered when Alembic itself is imported.

Alembic finds a dialect's implementation by name in a registry its classes fill when
they are defined, so ``alembic_impl`` must be imported before a migration starts, but
not before: importing Alembic (and the SQLAlchemy dialects it loads) took most of a new
process's time to open a store. If Alembic is already loaded the implementation is
registered at once; otherwise an import hook registers it just after ``alembic`` has
finished importing, whoever imports it first.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType


def _register() -> None:
    try:
        import deltadb_dialect.alembic_impl  # noqa: F401
    except ImportError:  # pragma: no cover - Alembic is optional for the dialect alone
        pass


class _AfterAlembic(importlib.abc.MetaPathFinder):
    """Finds ``alembic`` the usual way, then runs ``_register`` once it has loaded."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "alembic":
            return None
        sys.meta_path.remove(self)  # once; and find_spec below must not find us again
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        load = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            _register()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def register_alembic_support() -> None:
    if "alembic" in sys.modules:
        _register()
    elif not any(isinstance(finder, _AfterAlembic) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterAlembic())
