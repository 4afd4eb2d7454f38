"""Moving a store between storages: a directory and PostgreSQL, either way.

    python -m deltadb_dialect migrate-storage SRC DEST

SRC and DEST are locations (a directory, or ``DIRECTORY?storage=postgresql://...``). The
store moves as it is: the same sealed header, records, snapshot and anchor bytes, so the
same master key opens it and nothing is decrypted on the way. The source is held (its
writers wait) while it is copied; both ends are then verified and their row counts
compared. Stop the app servers first: commits made to SRC after the copy stay there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from deltadb_dialect.errors import StoreError
from deltadb_dialect.keys import MasterKeySource
from deltadb_dialect.layout import HEADER_NAME
from deltadb_dialect.storage import describe_location, open_storage, split_location
from deltadb_dialect.tools import (
    LOCATION_HELP,
    add_key_options,
    backup,
    info,
    source_from_args,
    verify,
)


def migrate_storage(src: str | os.PathLike[str], dest: str | os.PathLike[str],
                    source: MasterKeySource) -> dict[str, Any]:
    """Copy the store at ``src`` to the new location ``dest``; returns what was verified."""
    if split_location(src)[1] is None and split_location(dest)[1] is None:
        raise StoreError("both locations are directories: use backup and restore")
    with tempfile.TemporaryDirectory(prefix="deltadb-migrate-") as work:
        files = backup(src, Path(work) / "store", source)
        _put(files, dest)
    before, after = info(src, source), info(dest, source)
    report = verify(dest, source)
    if not report.ok:
        raise StoreError(f"the store at {describe_location(dest)} does not verify: "
                         + "; ".join(report.problems[:3]))
    rows = {t["table"]: t["rows"] for t in before["tables"]}
    if rows != {t["table"]: t["rows"] for t in after["tables"]}:
        raise StoreError("the row counts of the two stores differ")
    return {"sequence": after["sequence"], "tables": len(rows), "rows": sum(rows.values()),
            "entities": report.entities, "records": report.records}


def _put(files: Path, dest: str | os.PathLike[str]) -> None:
    """Place a store directory's files at ``dest`` (which must hold no store yet)."""
    directory, url = split_location(dest)
    target = open_storage(dest, timeout=30.0, create=True)
    try:
        if target.exists():
            raise StoreError(f"{describe_location(dest)} already holds a store")
        if url is None:
            target.create()
            for item in files.iterdir():
                shutil.copy2(item, Path(directory) / item.name)
            return
        from deltadb_dialect.pg_storage import PgStorage

        assert isinstance(target, PgStorage)
        target.create()
        header = json.loads((files / HEADER_NAME).read_bytes())["body"]
        snapshot = header.get("snapshot")
        lock = target.writer_lock()
        lock.hold()
        try:
            target.import_files(files, log=header["log"]["file"],
                                snapshot=snapshot["file"] if snapshot else None)
        finally:
            lock.unhold()
    finally:
        target.close()


def add_command(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("migrate-storage",
                            help="move a store between a directory and PostgreSQL, verified")
    parser.add_argument("src", help=LOCATION_HELP)
    parser.add_argument("dest", help="where the store goes (the same forms; no store there yet)")
    add_key_options(parser)
    parser.set_defaults(handler=_cmd_migrate)


def _cmd_migrate(args: argparse.Namespace) -> int:
    done = migrate_storage(args.src, args.dest, source_from_args(args))
    print(f"moved: {done['tables']} tables, {done['rows']} rows, {done['records']} log records "
          f"and {done['entities']} entities verified at {describe_location(args.dest)}")
    return 0
