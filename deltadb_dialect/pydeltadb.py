"""The default ``deltadb`` driver: ``deltadb:///path/to/store``.

Connection URL forms (modelled on ``sqlite+pysqlcipher``)::

    deltadb:///relative/store              key from $DELTADB_MASTER_KEY
    deltadb:////absolute/store?key_file=/etc/openchat/master.key
    deltadb://:passphrase@/relative/store  passphrase stretched by Argon2id
    deltadb://:passphrase@//absolute/store

Query options: ``key_file``, ``timeout`` (seconds to wait for the store's
lock), ``cache_size``, ``cache_ttl``, ``checkpoint_mb``, ``replica_cache_mb`` (the
replica file's page cache in this process, in MB), ``create`` (false to refuse
a missing store), ``wal_thread`` (true, the default: the replica's WAL is copied back
by a thread of its own; false: by SQLite inside the commit that fills it), ``locking``
(``first_statement``, the default for a directory: a transaction holds the store's writer
lock from its first statement; ``first_write``, the default with ``storage``: it reads a
snapshot without the lock and takes it at its first write, failing with SQLSTATE 40001 if
another process changed what it read meanwhile; see ``dbapi.connect``). The
passphrase and key file are consumed here and handed to the driver as a key source,
never as part of a logged string.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import exc, pool
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.url import URL

from deltadb_dialect.base import DeltaDialect

_OPTIONS: dict[str, type] = {
    "key_file": str,
    "timeout": float,
    "cache_size": int,
    "cache_ttl": float,
    "checkpoint_mb": float,
    "replica_cache_mb": float,
    "create": bool,
    "storage": str,
    "wal_thread": bool,
    "locking": str,
}

URL_FORMS = (
    "Valid DeltaDB URL forms are:\n"
    " deltadb:///relative/path/to/store\n"
    " deltadb:////absolute/path/to/store?key_file=/path/to/master.key\n"
    " deltadb://:passphrase@/relative/path/to/store\n"
    " deltadb:////host/replica/directory?storage=postgresql://user@host:5432/database"
)


class DeltaDialect_pydeltadb(DeltaDialect, SQLiteDialect_pysqlite):
    driver = "pydeltadb"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        from deltadb_dialect import dbapi

        return dbapi

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.QueuePool

    def create_connect_args(self, url: URL) -> Any:
        if url.username or url.host or url.port:
            raise exc.ArgumentError(f"Invalid DeltaDB URL: {url!r}\n{URL_FORMS}")
        if not url.database or url.database == ":memory:":
            raise exc.ArgumentError(
                f"A DeltaDB URL must name the store's directory.\n{URL_FORMS}"
            )
        unknown = sorted(set(url.query) - set(_OPTIONS))
        if unknown:
            raise exc.ArgumentError(
                f"Unknown DeltaDB URL option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(_OPTIONS))}"
            )
        options: dict[str, Any] = {}
        for key, kind in _OPTIONS.items():
            value = url.query.get(key)
            if value is None:
                continue
            options[key] = _coerce(key, value, kind)
        if options.get("locking", "first_write") not in ("first_statement", "first_write"):
            raise exc.ArgumentError(
                f"DeltaDB URL option locking={options['locking']!r} must be "
                "first_statement or first_write")
        if "checkpoint_mb" in options:
            options["checkpoint_bytes"] = int(options.pop("checkpoint_mb") * 1024 * 1024)
        if url.password:
            options["passphrase"] = url.password
        return ([os.path.abspath(url.database)], options)


def _coerce(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, tuple):
        raise exc.ArgumentError(f"DeltaDB URL option {key} is given more than once")
    if kind is bool:
        lowered = str(value).lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no"):
            raise exc.ArgumentError(f"DeltaDB URL option {key} must be true or false")
        return lowered in ("1", "true", "yes")
    try:
        return kind(value)
    except ValueError:
        raise exc.ArgumentError(
            f"DeltaDB URL option {key}={value!r} is not a valid {kind.__name__}"
        ) from None


dialect = DeltaDialect_pydeltadb
