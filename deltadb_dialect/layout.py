"""The store directory: which files exist, what they are called, and the header.

::

    STORE/
      store.hdr          header: format, KDF salt, wrapped keys, current snapshot and log (MAC'd)
      store.lock         inter-process lock (flock); holds no data
      snap-<random>.dpk  packed snapshot: every live entity, each its own ciphertext
      log-<random>.dlg   append-only change log since that snapshot

File names are random identifiers: nothing in a name or in the header
reveals a table, key or value. Table and key identities inside files are
keyed hashes (HMAC-SHA256 under the store's naming key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltadb_dialect.errors import CorruptStoreError, StorageFullError

FORMAT = "deltadb/1"
HEADER_NAME = "store.hdr"
LOCK_NAME = "store.lock"
ANCHOR_NAME = "store.seq"
TAG_BYTES = 16


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def new_file_name(kind: str) -> str:
    suffix = {"log": "dlg", "snap": "dpk"}[kind]
    return f"{kind}-{secrets.token_hex(8)}.{suffix}"


# Tags are keyed BLAKE2b (a PRF in keyed mode, and several times cheaper per call than
# HMAC-SHA256 in Python): one is computed for every row written.
def table_tag(naming_key: bytes, table: str) -> bytes:
    return hashlib.blake2b(table.encode(), key=naming_key, digest_size=TAG_BYTES,
                           person=b"deltadb-table").digest()


def key_tag(naming_key: bytes, tag_of_table: bytes, canonical_key: bytes) -> bytes:
    # Length-free concatenation is safe here: the table tag has a fixed width.
    return hashlib.blake2b(tag_of_table + canonical_key, key=naming_key,
                           digest_size=TAG_BYTES, person=b"deltadb-key").digest()


def key_hasher(naming_key: bytes, tag_of_table: bytes) -> Any:
    """``key_tag`` for many keys of one table: ``h = hasher.copy(); h.update(canonical_key);
    h.digest()`` gives the same tag without re-keying BLAKE2b for every row."""
    hasher = hashlib.blake2b(key=naming_key, digest_size=TAG_BYTES, person=b"deltadb-key")
    hasher.update(tag_of_table)
    return hasher


@dataclass
class Header:
    store_id: bytes
    store_key: bytes  # wrapped by the master key; a wrong master key fails to unwrap it
    data_keys: dict[int, bytes]  # kid -> data key wrapped by the store key
    active_kid: int
    kdf: dict[str, Any] | None = None
    snapshot: dict[str, Any] | None = None  # {"file", "seq", "sha256"}
    log: dict[str, Any] = field(default_factory=dict)  # {"file", "base_seq"}
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "store_id": self.store_id.hex(),
            "kdf": self.kdf,
            "store_key": b64(self.store_key),
            "data_keys": {str(k): b64(v) for k, v in sorted(self.data_keys.items())},
            "active_kid": self.active_kid,
            "snapshot": self.snapshot,
            "log": self.log,
            "extra": self.extra,
        }

    @staticmethod
    def canonical(body: dict[str, Any]) -> bytes:
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Header:
        if body.get("format") != FORMAT:
            raise CorruptStoreError(f"unsupported store format {body.get('format')!r}")
        return cls(
            store_id=bytes.fromhex(body["store_id"]),
            store_key=unb64(body["store_key"]),
            data_keys={int(k): unb64(v) for k, v in body["data_keys"].items()},
            active_kid=int(body["active_kid"]),
            kdf=body.get("kdf"),
            snapshot=body.get("snapshot"),
            log=body.get("log") or {},
            extra=body.get("extra") or {},
        )


class StoreLayout:
    """Paths inside one store directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.header = self.root / HEADER_NAME
        self.anchor = self.root / ANCHOR_NAME
        self.lock = self.root / LOCK_NAME

    def file(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise CorruptStoreError(f"header names an invalid file {name!r}")
        return self.root / name

    def exists(self) -> bool:
        return self.header.exists()

    def read_header_json(self) -> tuple[dict[str, Any], str]:
        try:
            raw = self.header.read_bytes()
        except FileNotFoundError:
            raise CorruptStoreError(f"{self.root} is not a DeltaDB store (no header)") from None
        try:
            document = json.loads(raw)
            return document["body"], document["mac"]
        except (ValueError, KeyError, TypeError):
            raise CorruptStoreError(f"the store header in {self.root} is damaged") from None

    def write_header(self, header: Header, mac_for: Callable[[bytes], str]) -> None:
        body = header.body()
        document = {"body": body, "mac": mac_for(Header.canonical(body))}
        write_file_atomic(self.header, json.dumps(document, indent=1).encode())

    def create_directory(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename, fsync the directory: the file is old or new, never torn."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageFullError(f"cannot write {path.name}: {exc.strerror or exc}") from exc
