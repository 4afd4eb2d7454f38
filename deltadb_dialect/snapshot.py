"""Packed snapshots: every live entity in one file, each its own ciphertext.

Opening from one packed file is far faster than from one file per row (one
read instead of a hundred thousand opens), while every row keeps its own
AES-GCM ciphertext and associated data. The header records the snapshot's
SHA-256, so swapping, truncating or restoring an older snapshot is detected.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from deltadb_dialect.errors import CorruptStoreError, StorageFullError, TamperError
from deltadb_dialect.layout import fsync_directory
from deltadb_dialect.log import ENTRY, Entry, decode_entries

PACK_MAGIC = b"DDBPACK1"
PACK_HEADER = struct.Struct(">8s16sQH")  # magic, store id, sequence, key id
LENGTH = struct.Struct(">I")
TRAILER = struct.Struct(">8sQ")  # end magic, entry count
END_MAGIC = b"DDBEND\x00\x00"
SYNC_EVERY = 32 * 1024 * 1024  # bytes written between syncs of a snapshot being written


def write_snapshot(path: Path, *, store_id: bytes, seq: int, kid: int, sealed_catalog: bytes,
                   entries: Iterable[Entry]) -> str:
    """Write a snapshot durably under a temporary name, rename it; returns its SHA-256."""
    digest = hashlib.sha256()
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    unsynced = 0
    try:
        with open(tmp, "wb", buffering=1 << 20) as out:
            def emit(data: bytes) -> None:
                nonlocal unsynced
                digest.update(data)
                out.write(data)
                unsynced += len(data)
                if unsynced >= SYNC_EVERY:
                    # A snapshot is written while commits go on: hundreds of megabytes of
                    # dirty pages would make the kernel throttle every writer of the host,
                    # and the commits' own log syncs wait behind them.
                    out.flush()
                    os.fdatasync(out.fileno())
                    unsynced = 0

            emit(PACK_HEADER.pack(PACK_MAGIC, store_id, seq, kid))
            emit(LENGTH.pack(len(sealed_catalog)) + sealed_catalog)
            for entry in entries:
                emit(ENTRY.pack(entry.op, entry.table_tag, entry.key_tag, len(entry.sealed)))
                emit(entry.sealed)
                count += 1
            emit(TRAILER.pack(END_MAGIC, count))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageFullError(f"cannot write a snapshot: {exc.strerror or exc}") from exc
    return digest.hexdigest()


class Snapshot:
    """A verified snapshot, mapped rather than read: entries are decoded one at a time,
    so opening a store never holds the whole file and all its entries at once."""

    def __init__(self, path: Path, *, store_id: bytes, expected_sha256: str) -> None:
        try:
            with open(path, "rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise CorruptStoreError(f"the store's snapshot {path.name} is missing") from None
        except ValueError:  # an empty file cannot be mapped
            raise CorruptStoreError(f"snapshot {path.name} is truncated") from None
        data = self._map
        if hashlib.sha256(data).hexdigest() != expected_sha256:
            raise TamperError(
                f"snapshot {path.name} does not match the store header: it was modified, "
                "truncated, or replaced by another or an older snapshot"
            )
        magic, file_store_id, self.seq, self.kid = PACK_HEADER.unpack_from(data)
        if magic != PACK_MAGIC or file_store_id != store_id:
            raise CorruptStoreError(f"snapshot {path.name} is not this store's")
        offset = PACK_HEADER.size
        (length,) = LENGTH.unpack_from(data, offset)
        offset += LENGTH.size
        self.sealed_catalog = data[offset:offset + length]
        body_end = len(data) - TRAILER.size
        end_magic, self.count = TRAILER.unpack_from(data, body_end)
        if end_magic != END_MAGIC:
            raise CorruptStoreError(f"snapshot {path.name} is truncated")
        self._body = (offset + length, body_end)

    def entries(self) -> Iterator[Entry]:
        start, end = self._body
        count = 0
        with memoryview(self._map) as view:
            for entry in decode_entries(view[start:end], what="snapshot"):
                count += 1
                yield entry
        if count != self.count:
            raise CorruptStoreError("snapshot entry count does not match its trailer")

    def close(self) -> None:
        self._map.close()
