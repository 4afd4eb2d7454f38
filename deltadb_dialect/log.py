"""The append-only change log: one sealed record per committed transaction.

A record is ``header (20 bytes) | crc32(header) | sealed body``. The body is
sealed (AES-GCM) with the header as associated data, so a record cannot be
moved, renumbered or altered. Inside it, each row change is an entity entry
carrying its own ciphertext, bound to (store, table, key, version).

Commit appends the whole record with a single ``write`` and one ``fsync``:
that is the commit point. A crash leaves at most one incomplete record at the
end (a torn tail), which readers ignore and the next writer truncates; a
complete record that fails to authenticate is tampering, never ignored.
Large transactions span several records; only the last
one clears the ``CONTINUED`` flag, and a transaction is applied only whole.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deltadb_dialect.errors import CorruptStoreError, StorageFullError
from deltadb_dialect.keys import Keyring

FILE_MAGIC = b"DDBLOG1\x00"
FILE_HEADER = struct.Struct(">8s16sQ")  # magic, store id, base sequence
RECORD_HEADER = struct.Struct(">4sBBHQI")  # magic, version, flags, key id, sequence, body length
RECORD_MAGIC = b"DDBR"
READ_CHUNK = 1 << 20
CRC = struct.Struct(">I")
ENTRY = struct.Struct(">c16s16sI")  # op, table tag, key tag, sealed length
CONTINUED = 0x01

UPSERT, DELETE, CATALOG, RESET = b"U", b"D", b"C", b"R"
NO_TAG = bytes(16)


@dataclass(slots=True)
class Entry:
    """One entity change (or a catalog/reset marker) inside a record or snapshot."""

    op: bytes
    table_tag: bytes
    key_tag: bytes
    sealed: bytes


def entity_aad(store_id: bytes, entry_op: bytes, table_tag: bytes, key_tag: bytes,
               version: int) -> bytes:
    version_bytes = version.to_bytes(8, "big")
    return b"deltadb/entity|" + entry_op + store_id + table_tag + key_tag + version_bytes


def encode_entries(entries: Iterable[Entry]) -> bytes:
    parts: list[bytes] = []
    for entry in entries:
        parts.append(ENTRY.pack(entry.op, entry.table_tag, entry.key_tag, len(entry.sealed)))
        parts.append(entry.sealed)
    return b"".join(parts)


def decode_entries(payload: bytes | memoryview, *, what: str) -> Iterator[Entry]:
    view = memoryview(payload)
    offset, end = 0, len(view)
    while offset < end:
        if end - offset < ENTRY.size:
            raise CorruptStoreError(f"{what}: truncated entry")
        op, ttag, ktag, length = ENTRY.unpack_from(view, offset)
        offset += ENTRY.size
        if offset + length > end:
            raise CorruptStoreError(f"{what}: entry overruns its container")
        yield Entry(op, ttag, ktag, bytes(view[offset:offset + length]))
        offset += length


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    flags: int
    kid: int
    payload: bytes
    end: int  # file offset just after this record


class LogFile:
    """One log file: readers scan it from an offset, the lock holder appends to it."""

    def __init__(self, path: Path, *, store_id: bytes, keyring: Keyring) -> None:
        self.path = path
        self._store_id = store_id
        self._keyring = keyring
        try:
            self._fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise CorruptStoreError(f"the store's log file {path.name} is missing") from None
        head = os.pread(self._fd, FILE_HEADER.size + CRC.size, 0)
        if len(head) < FILE_HEADER.size + CRC.size:
            raise CorruptStoreError(f"log file {path.name} has no header")
        magic, file_store_id, self.base_seq = FILE_HEADER.unpack_from(head)
        (crc,) = CRC.unpack_from(head, FILE_HEADER.size)
        if magic != FILE_MAGIC or crc != zlib.crc32(head[:FILE_HEADER.size]):
            raise CorruptStoreError(f"log file {path.name} has a damaged header")
        if file_store_id != store_id:
            raise CorruptStoreError(f"log file {path.name} belongs to another store")
        self.start = FILE_HEADER.size + CRC.size

    @classmethod
    def create(cls, path: Path, *, store_id: bytes, base_seq: int, keyring: Keyring) -> LogFile:
        head = FILE_HEADER.pack(FILE_MAGIC, store_id, base_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, head + CRC.pack(zlib.crc32(head)))
            os.fsync(fd)
        finally:
            os.close(fd)
        return cls(path, store_id=store_id, keyring=keyring)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def fileno(self) -> int:
        return self._fd

    def records(self, offset: int, expected_seq: int) -> Iterator[Record]:
        """Complete records from ``offset``, streamed: memory stays bounded by one record.

        Stops quietly at the end or at a torn final record; raises on damage.
        """
        buffer = b""
        base = offset  # file offset of buffer[0]
        position = 0
        while True:
            record, consumed = self._parse_one(buffer, position, expected_seq)
            if record is None:
                chunk = os.pread(self._fd, READ_CHUNK, base + len(buffer))
                if not chunk:
                    return
                buffer = buffer[position:] + chunk
                base += position
                position = 0
                continue
            position += consumed
            expected_seq += 1
            yield Record(record.seq, record.flags, record.kid, record.payload, base + position)

    def read(self, offset: int, expected_seq: int) -> list[Record]:
        return list(self.records(offset, expected_seq))

    def _parse_one(self, data: bytes, position: int,
                   expected_seq: int) -> tuple[Record | None, int]:
        header_end = position + RECORD_HEADER.size + CRC.size
        if header_end > len(data):
            return None, 0  # torn: even the header did not make it
        header = data[position:position + RECORD_HEADER.size]
        (crc,) = CRC.unpack_from(data, position + RECORD_HEADER.size)
        if crc != zlib.crc32(header):
            if not any(data[position:]):
                return None, 0  # zero-filled tail left by a crash: torn, not tampered
            raise CorruptStoreError(f"log record after sequence {expected_seq - 1} is damaged")
        magic, version, flags, kid, seq, length = RECORD_HEADER.unpack(header)
        if magic != RECORD_MAGIC or version != 1:
            raise CorruptStoreError(f"log record {seq} has an unknown format")
        if header_end + length > len(data):
            return None, 0  # torn: the body was cut short
        if seq != expected_seq:
            raise CorruptStoreError(
                f"log record {seq} found where {expected_seq} was expected "
                "(records removed, reordered or replayed)"
            )
        sealed = data[header_end:header_end + length]
        payload = self._keyring.sealer(kid).open(
            sealed, self._store_id + header, what=f"log record {seq}"
        )
        return Record(seq, flags, kid, payload, 0), header_end + length - position

    def append(self, records: list[tuple[int, int, bytes]], at: int) -> int:
        """Write sealed records at offset ``at`` (the known end) and fsync; returns the new end."""
        sealer = self._keyring.active
        blob = bytearray()
        for seq, flags, payload in records:
            header = RECORD_HEADER.pack(RECORD_MAGIC, 1, flags, sealer.key_id, seq,
                                        len(payload) + 28)
            blob += header + CRC.pack(zlib.crc32(header))
            blob += sealer.seal(payload, self._store_id + header)
        try:
            written = os.pwrite(self._fd, blob, at)
            if written != len(blob):
                raise OSError(28, "short write (disk full?)")
            os.fsync(self._fd)
        except OSError as exc:
            self._truncate_quietly(at)
            raise StorageFullError(
                f"commit could not be written to the store: {exc.strerror or exc}; "
                "nothing was committed"
            ) from exc
        return at + len(blob)

    def truncate(self, at: int) -> None:
        os.ftruncate(self._fd, at)
        os.fsync(self._fd)

    def _truncate_quietly(self, at: int) -> None:
        try:
            os.ftruncate(self._fd, at)
        except OSError:
            pass
