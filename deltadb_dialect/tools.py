"""Store operations behind the CLI: verify, info, rotate-key, backup, restore, checkpoint.

Every function here takes paths and key sources and returns plain data, so
the same operations are usable from Python; ``cli.py`` only parses arguments
and prints.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltadb_dialect import keys
from deltadb_dialect.errors import CorruptStoreError, StoreError, TamperError
from deltadb_dialect.keys import MasterKeySource
from deltadb_dialect.layout import HEADER_NAME
from deltadb_dialect.log import CATALOG, RESET, decode_entries, entity_aad
from deltadb_dialect.replica import quote
from deltadb_dialect.storage import describe_location, open_storage
from deltadb_dialect.store import Store, StoreOptions


@dataclass
class VerifyReport:
    entities: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def open_existing(path: str | os.PathLike[str], source: MasterKeySource) -> Store:
    """An existing store: a directory, or ``DIRECTORY?storage=postgresql://...``."""
    storage = open_storage(path, timeout=0, create=False)
    try:
        if not storage.exists():
            raise CorruptStoreError(f"{describe_location(path)} is not a DeltaDB store "
                                    "(no store.hdr)")
    finally:
        storage.close()
    return Store.open(path, source, StoreOptions(create=False))


def verify(path: str | os.PathLike[str], source: MasterKeySource) -> VerifyReport:
    """Authenticate every ciphertext in the store and validate every row; list all problems."""
    report = VerifyReport()
    try:
        store = open_existing(path, source)
    except StoreError as exc:
        report.problems.append(str(exc))
        store = None
    if store is not None:
        try:
            _count_rows(store, report)
        finally:
            store.close()
    _walk_files(path, source, report)
    return report


def _count_rows(store: Store, report: VerifyReport) -> None:
    """Every row of the replica valid, and its file whole (SQLite's own page checks)."""
    checked = [str(row[0]) for row in store.replica.conn.execute("PRAGMA quick_check")]
    if checked != ["ok"]:
        report.problems.append("replica: " + "; ".join(checked[:3]))
    for table in store.replica.tables.values():
        for change in store.replica.export_table(table):
            try:
                table.validator(change.document or {})
            except StoreError as exc:
                report.problems.append(str(exc))


def _walk_files(root: str | os.PathLike[str], source: MasterKeySource,
                report: VerifyReport) -> None:
    """Check each record and entity on its own, so one bad one does not hide the others."""
    try:
        store = Store.inspect(root, source)
    except (StoreError, OSError):
        return  # already reported by the full open
    try:
        header, keyring = store.header, store.keyring
        try:
            snapshot = store.open_snapshot()
            if snapshot is not None:
                for entry in snapshot.entries():
                    _check_entry(keyring, header.store_id, entry, snapshot.kid, snapshot.seq,
                                 report)
                snapshot.close()
        except StoreError as exc:
            report.problems.append(f"snapshot: {exc}")
        try:
            log = store.open_log()
            for record in log.records(log.start, header.log.get("base_seq", 0) + 1,
                                      store.acknowledged):
                report.records += 1
                for entry in decode_entries(record.payload, what=f"log record {record.seq}"):
                    if entry.op not in (CATALOG, RESET):
                        _check_entry(keyring, header.store_id, entry, record.kid, record.seq,
                                     report)
            log.close()
        except StoreError as exc:
            report.problems.append(f"log: {exc}")
    finally:
        store.close()


def _check_entry(keyring: Any, store_id: bytes, entry: Any, kid: int, version: int,
                 report: VerifyReport) -> None:
    aad = entity_aad(store_id, entry.op, entry.table_tag, entry.key_tag, version)
    try:
        keyring.sealer(kid).open(entry.sealed, aad, what=f"entity {entry.key_tag.hex()[:12]}")
        report.entities += 1
    except TamperError as exc:
        report.problems.append(str(exc))


def info(path: str | os.PathLike[str], source: MasterKeySource) -> dict[str, Any]:
    """Tables, row counts, sizes and key ids. Never any row content."""
    store = open_existing(path, source)
    try:
        header = store.header
        conn = store.replica.conn
        tables = []
        for name, table in sorted(store.replica.tables.items()):
            sql = f"SELECT count(*) FROM {quote(name)}"  # noqa: S608 - a quoted table name
            count = conn.execute(sql).fetchall()[0][0]
            tables.append({"table": name, "rows": count, "schema_version": table.version})
        files = store.storage.sizes()
        return {
            "store": str(store.location),
            "format": "deltadb/1",
            "sequence": store.seq,
            "key_ids": sorted(header.data_keys),
            "active_key_id": header.active_kid,
            "master_key": "passphrase (argon2id)" if header.kdf else "raw 256-bit key",
            "tables": tables,
            "files": files,
            "bytes_on_disk": sum(files.values()),
        }
    finally:
        store.close()


@contextmanager
def held_store(path: str | os.PathLike[str], source: MasterKeySource) -> Iterator[Store]:
    """An existing store, opened and held (writers in every process wait) until the block ends."""
    store = open_existing(path, source)
    try:
        store.acquire()
        try:
            yield store
        finally:
            store.release()
    finally:
        store.close()


def rotate_key(path: str | os.PathLike[str], old: MasterKeySource, new: MasterKeySource) -> None:
    """Re-wrap the store key under a new master key; safe while other processes run."""
    with held_store(path, old) as store:
        store.rotate_master_key(new)


def checkpoint(path: str | os.PathLike[str], source: MasterKeySource) -> None:
    with held_store(path, source) as store:
        store.checkpoint()


def backup(path: str | os.PathLike[str], destination: str | os.PathLike[str],
           source: MasterKeySource) -> Path:
    """A consistent, still-encrypted copy, taken under the store's lock while writers wait."""
    target = Path(destination)
    if target.exists() and any(target.iterdir()):
        raise StoreError(f"backup destination {target} exists and is not empty")
    with held_store(path, source) as store:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        header = store.header
        names = [header.log["file"]] + ([header.snapshot["file"]] if header.snapshot else [])
        store.storage.copy_to(target, [*names, HEADER_NAME])
        _fsync_tree(target)
    return target


def restore(backup_dir: str | os.PathLike[str], destination: str | os.PathLike[str],
            source: MasterKeySource) -> Path:
    """Copy a backup into place after proving the key opens it and every entity verifies."""
    report = verify(backup_dir, source)
    if not report.ok:
        raise StoreError("the backup does not verify: " + "; ".join(report.problems[:3]))
    target = Path(destination)
    if target.exists() and any(target.iterdir()):
        raise StoreError(f"restore destination {target} exists and is not empty")
    shutil.copytree(backup_dir, target, dirs_exist_ok=True)
    _fsync_tree(target)
    return target


def _fsync_tree(directory: Path) -> None:
    for item in directory.iterdir():
        with open(item, "rb") as handle:
            os.fsync(handle.fileno())
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- command line ------------------------------------------------------------------------

LOCATION_HELP = ("the store directory, or a host's replica directory and the store's "
                 "database: DIRECTORY?storage=postgresql://USER@HOST:PORT/DATABASE")

def source_from_args(args: argparse.Namespace, *, prefix: str = "") -> MasterKeySource:
    passphrase = None
    if getattr(args, f"{prefix}passphrase", False):
        passphrase = getpass.getpass(f"{'New p' if prefix else 'P'}assphrase: ")
    return keys.resolve_source(passphrase=passphrase,
                               key_file=getattr(args, f"{prefix}key_file", None))


def add_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-file", help=f"master key file (default: ${keys.MASTER_KEY_ENV})")
    parser.add_argument("--passphrase", action="store_true",
                        help="prompt for the store's passphrase")


def add_commands(sub: argparse._SubParsersAction) -> None:
    for name, handler, text in (
        ("verify", _cmd_verify, "authenticate every entity and report what is wrong"),
        ("info", _cmd_info, "tables, row counts, sizes and key ids (no plaintext)"),
        ("checkpoint", _cmd_checkpoint, "pack the log into a new snapshot"),
    ):
        parser = sub.add_parser(name, help=text)
        parser.add_argument("path", help=LOCATION_HELP)
        add_key_options(parser)
        parser.set_defaults(handler=handler)

    rotate = sub.add_parser("rotate-key", help="re-wrap the store under a new master key")
    rotate.add_argument("path", nargs="?", default=os.environ.get("DELTADB_STORE"),
                        help="the store directory (default: $DELTADB_STORE)")
    add_key_options(rotate)
    rotate.add_argument("--new-key-file", help="the new master key (made with keygen)")
    rotate.add_argument("--new-passphrase", action="store_true", help="prompt for a new passphrase")
    rotate.set_defaults(handler=_cmd_rotate)

    backup_parser = sub.add_parser("backup", help="consistent encrypted copy while writes go on")
    backup_parser.add_argument("path")
    backup_parser.add_argument("destination")
    add_key_options(backup_parser)
    backup_parser.set_defaults(handler=_cmd_backup)

    restore_parser = sub.add_parser("restore", help="verify a backup and copy it into place")
    restore_parser.add_argument("backup")
    restore_parser.add_argument("destination")
    add_key_options(restore_parser)
    restore_parser.set_defaults(handler=_cmd_restore)


def _cmd_verify(args: argparse.Namespace) -> int:
    report = verify(args.path, source_from_args(args))
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    state = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    print(f"{state}: {report.entities} entities in {report.records} log records authenticated")
    return 0 if report.ok else 2


def _cmd_info(args: argparse.Namespace) -> int:
    print(json.dumps(info(args.path, source_from_args(args)), indent=2))
    return 0


def _cmd_checkpoint(args: argparse.Namespace) -> int:
    checkpoint(args.path, source_from_args(args))
    print("checkpoint written")
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    if not args.path:
        raise StoreError("name the store directory (or set DELTADB_STORE)")
    if not (args.new_key_file or args.new_passphrase):
        raise StoreError("give --new-key-file PATH (make one with keygen) or --new-passphrase")
    old = source_from_args(args)
    new = keys.resolve_source(
        passphrase=getpass.getpass("New passphrase: ") if args.new_passphrase else None,
        key_file=args.new_key_file, environ={},
    )
    rotate_key(args.path, old, new)
    print("master key rotated: the old key no longer opens this store", file=sys.stderr)
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    target = backup(args.path, args.destination, source_from_args(args))
    print(f"backup written to {target} (encrypted; the same master key opens it)")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    target = restore(args.backup, args.destination, source_from_args(args))
    print(f"restored into {target}")
    return 0
