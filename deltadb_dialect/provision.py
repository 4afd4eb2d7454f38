"""SQLAlchemy testing provisioning for the ``deltadb`` backend.

SQLAlchemy's test plugin loads this module through the dialect's
``load_provisioning()`` (it is ``deltadb_dialect.provision``, next to the
dialect). It follows ``sqlalchemy/dialects/sqlite/provision.py``: a test
"database" is a store directory, created on first connect by the driver and
removed with the directory when the run (or an xdist worker) is done.

The URL given to ``--dburi`` names the main store, e.g.
``deltadb:////tmp/compliance/main``; an xdist follower ``ident`` gets the
sibling directory ``main_<ident>``. The master key comes from the URL
(``key_file``) or from ``$DELTADB_MASTER_KEY``, as for any other use.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from sqlalchemy.engine import url as sa_url
from sqlalchemy.testing.provision import (
    create_db,
    drop_db,
    follower_url_from_main,
    log,
    run_reap_dbs,
    stop_test_class_outside_fixtures,
    temp_table_keyword_args,
    upsert,
)


def _store_path(url: Any) -> str:
    return os.path.abspath(sa_url.make_url(url).database or "")


@follower_url_from_main.for_db("deltadb")
def _follower_url_from_main(url: Any, ident: str) -> Any:
    url = sa_url.make_url(url)
    return url.set(database=f"{_store_path(url)}_{ident}")


@create_db.for_db("deltadb")
def _create_db(cfg: Any, eng: Any, ident: str) -> None:
    # The driver creates a missing store on first connect (``create`` is true by default).
    pass


@drop_db.for_db("deltadb")
def _drop_db(cfg: Any, eng: Any, ident: str) -> None:
    eng.dispose()
    _remove_store(f"{_store_path(eng.url)}_{ident}")


def _remove_store(path: str) -> None:
    if os.path.isdir(path):
        log.info("deleting DeltaDB test store: %s", path)
        shutil.rmtree(path, ignore_errors=True)


@run_reap_dbs.for_db("deltadb")
def _reap_dbs(url: Any, idents: Any) -> None:
    for ident in idents:
        _remove_store(f"{_store_path(url)}_{ident}")


@stop_test_class_outside_fixtures.for_db("deltadb")
def _stop_test_class_outside_fixtures(config: Any, db: Any, cls: Any) -> None:
    # As for SQLite: drop pooled connections between test classes so a class
    # never inherits another's connection state (e.g. a PRAGMA foreign_keys).
    db.dispose()


@temp_table_keyword_args.for_db("deltadb")
def _temp_table_keyword_args(cfg: Any, eng: Any) -> dict[str, Any]:
    return {"prefixes": ["TEMPORARY"]}


@upsert.for_db("deltadb")
def _upsert(cfg: Any, table: Any, returning: Any, *, set_lambda: Any = None,
            sort_by_parameter_order: bool = False, index_elements: Any = None) -> Any:
    from sqlalchemy.dialects.sqlite import insert

    stmt = insert(table)
    if set_lambda:
        stmt = stmt.on_conflict_do_update(set_=set_lambda(stmt.excluded))
    else:
        stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(*returning, sort_by_parameter_order=sort_by_parameter_order)
