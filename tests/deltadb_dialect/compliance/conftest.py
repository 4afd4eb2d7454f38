"""SQLAlchemy's and Alembic's dialect compliance suites, run against ``deltadb://``.

SQLAlchemy's pytest plugin takes over the session it runs in, so these suites
are a separate pytest invocation (the project's main run ignores this
directory, see ``tests/deltadb_dialect/conftest.py``)::

    .venv/bin/python -m pytest tests/deltadb_dialect/compliance
    .venv/bin/python -m pytest tests/deltadb_dialect/compliance --db sqlite   # stock SQLite
    .venv/bin/python -m pytest tests/deltadb_dialect/compliance --db deltadb_pg  # on PostgreSQL

Configuration lives here rather than in a root ``setup.cfg``: the plugin reads
``[sqla_testing]`` and ``[db]`` from the rootdir, and this conftest fills in
what is missing, so the run works from any rootdir. Each run works in a fresh
temporary directory (the current directory while the suites run: SQLite's
provisioning and Alembic's ``scratch`` staging directory are relative to it)
with a fresh master key; both are gone afterwards.
"""

import os
import secrets
import shutil
import tempfile
from typing import Any

import pytest

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin import plugin_base  # noqa: E402
from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403
from sqlalchemy.testing.plugin.pytestplugin import (  # noqa: E402
    pytest_configure as _sqla_pytest_configure,
)
from sqlalchemy.testing.plugin.pytestplugin import (  # noqa: E402
    pytest_unconfigure as _sqla_pytest_unconfigure,
)

import deltadb_dialect  # noqa: E402,F401  (registers the deltadb dialect)

_state: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    for marker in ("sparse_backend", "sparse_driver_backend", "mypy"):
        config.addinivalue_line("markers", f"{marker}: set by SQLAlchemy's test plugin")
    work = tempfile.mkdtemp(prefix="deltadb-compliance-")
    _state.update(work=work, cwd=os.getcwd())
    os.chdir(work)
    # Throwaway stores, throwaway key: never the developer's own key.
    os.environ["DELTADB_MASTER_KEY"] = secrets.token_hex(32)
    _sqla_pytest_configure(config)
    storage = _start_postgresql() if "deltadb_pg" in (config.getoption("db") or []) else ""
    _fill_sqla_testing_config(plugin_base.file_config, work, storage)


def _start_postgresql() -> str:
    """``--db deltadb_pg``: the store kept in a throwaway PostgreSQL cluster (its replica in
    the run's directory), stopped at the end of the run."""
    from tests.pg_cluster import DATABASE, USER, PostgresCluster

    cluster = PostgresCluster().start()
    _state["cluster"] = cluster
    return f"postgresql://{USER}@127.0.0.1:{cluster.port}/{DATABASE}"


def _fill_sqla_testing_config(file_config, work: str, storage: str = "") -> None:
    wanted = {
        "sqla_testing": {
            "requirement_cls": "deltadb_dialect.requirements:Requirements",
            "profile_file": os.path.join(work, "profiles.txt"),
        },
        "db": {
            "default": f"deltadb:///{os.path.join(work, 'store')}",
            "deltadb": f"deltadb:///{os.path.join(work, 'store')}",
            "sqlite": "sqlite:///compliance.db",
            "deltadb_pg": f"deltadb:///{os.path.join(work, 'replica')}?storage={storage}",
        },
    }
    for section, options in wanted.items():
        if not file_config.has_section(section):
            file_config.add_section(section)
        for key, value in options.items():
            if not file_config.has_option(section, key):
                file_config.set(section, key, value)


def pytest_unconfigure(config: pytest.Config) -> None:
    _sqla_pytest_unconfigure(config)
    cluster = _state.pop("cluster", None)
    if cluster is not None:
        cluster.stop()
    if "work" in _state:
        os.chdir(_state["cwd"])
        shutil.rmtree(_state["work"], ignore_errors=True)
