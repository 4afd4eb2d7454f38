"""The append-only change log: one sealed record per committed transaction.

A record is ``header (20 bytes) | crc32(header) | sealed body``. The body is
sealed (AES-GCM) with the header as associated data, so a record cannot be
moved, renumbered or altered. Inside it, each row change is an entity entry
carrying its own ciphertext, bound to (store, table, key, version).

Commit writes the whole record with a single ``pwrite`` and one ``fdatasync``:
that is the commit point. The file is extended ahead of the records in zero-filled
steps, so a small commit overwrites blocks that already exist and its
``fdatasync`` has no file-size change to journal. The log therefore ends at the
first all-zero record header (or at the end of the file).

A crash leaves at most one incomplete write after the last complete record (a
torn tail: a prefix of a record, or, after a power loss, any pages of it, with
zeros or a shorter prefix elsewhere). Readers stop there and the next lock
holder truncates it. What is past the end of the log is told apart from damage
by the commit anchor (the last acknowledged sequence number, see store.py): a
record that fails to parse or to authenticate where the anchor says a commit
was acknowledged is tampering or corruption, never ignored; past the
acknowledged end it was never acknowledged, so it is a torn write.
Large transactions span several records; only the last
one clears the ``CONTINUED`` flag, and a transaction is applied only whole.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deltadb_dialect.errors import CorruptStoreError, StorageFullError, StoreError
from deltadb_dialect.keys import Keyring

FILE_MAGIC = b"DDBLOG1\x00"
FILE_HEADER = struct.Struct(">8s16sQ")  # magic, store id, base sequence
RECORD_HEADER = struct.Struct(">4sBBHQI")  # magic, version, flags, key id, sequence, body length
RECORD_MAGIC = b"DDBR"
READ_CHUNK = 1 << 20
# Preallocation: a write that runs past the file's end and is smaller than this is
# followed by zeros up to PREALLOC_MIN..PREALLOC_MAX bytes (a quarter of the log's size)
# further; larger writes (bulk commits) just extend the file.
PREALLOC_MIN = 64 * 1024
PREALLOC_MAX = 4 * 1024 * 1024
_sync_data = getattr(os, "fdatasync", os.fsync)
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


def _zeros(data: bytes | memoryview) -> bool:
    return bytes(data).count(0) == len(data)


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
        self._allocated = 0  # the file's size when last seen (it only grows, but by truncation)

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

    def records(self, offset: int, expected_seq: int,
                acknowledged: Callable[[], int | None] | None = None) -> Iterator[Record]:
        """Complete records from ``offset``, streamed: memory stays bounded by one record.

        Stops quietly at the end of the log (an all-zero header or the end of the file)
        and at a torn write after the last acknowledged commit; raises on damage.
        ``acknowledged`` gives the last acknowledged sequence number (the commit anchor),
        asked only when something at the end fails to parse; None: not known.
        """
        buffer = b""
        base = offset  # file offset of buffer[0]
        position = 0
        at_eof = False
        while True:
            record, consumed = self._parse_one(buffer, position, expected_seq, at_eof,
                                               acknowledged)
            if record is None:
                if consumed < 0 or at_eof:
                    return  # the end of the log, or a torn write
                chunk = os.pread(self._fd, READ_CHUNK, base + len(buffer))
                buffer = buffer[position:] + chunk
                base += position
                position = 0
                at_eof = not chunk
                continue
            position += consumed
            expected_seq += 1
            yield Record(record.seq, record.flags, record.kid, record.payload, base + position)

    def read(self, offset: int, expected_seq: int) -> list[Record]:
        return list(self.records(offset, expected_seq))

    def _parse_one(self, data: bytes, position: int, expected_seq: int, at_eof: bool,
                   acknowledged: Callable[[], int | None] | None,
                   ) -> tuple[Record | None, int]:
        """One record at ``position``; (None, 0): more data needed; (None, -1): the end."""
        header_end = position + RECORD_HEADER.size + CRC.size
        if header_end > len(data):
            if at_eof and any(data[position:]):
                self._check_torn(expected_seq, acknowledged)  # even the header was cut short
            return None, 0
        header = data[position:position + RECORD_HEADER.size]
        (crc,) = CRC.unpack_from(data, position + RECORD_HEADER.size)
        if crc != zlib.crc32(header):
            if _zeros(data[position:header_end]):
                return None, -1  # the end of the log: preallocated zeros follow
            self._check_torn(expected_seq, acknowledged,
                             f"log record after sequence {expected_seq - 1} is damaged")
            return None, -1
        magic, version, flags, kid, seq, length = RECORD_HEADER.unpack(header)
        if magic != RECORD_MAGIC or version != 1:
            self._check_torn(expected_seq, acknowledged,
                             f"log record {seq} has an unknown format")
            return None, -1
        if header_end + length > len(data):
            return None, 0  # torn if the file ends first: the body was cut short
        if seq != expected_seq:
            self._check_torn(expected_seq, acknowledged,
                             f"log record {seq} found where {expected_seq} was expected "
                             "(records removed, reordered or replayed)")
            return None, -1
        sealed = data[header_end:header_end + length]
        try:
            payload = self._keyring.sealer(kid).open(
                sealed, self._store_id + header, what=f"log record {seq}"
            )
        except StoreError as exc:  # TamperError, or an unknown key id
            self._check_torn(expected_seq, acknowledged, exc)
            return None, -1
        return Record(seq, flags, kid, payload, 0), header_end + length - position

    @staticmethod
    def _check_torn(expected_seq: int, acknowledged: Callable[[], int | None] | None,
                    damage: str | Exception | None = None) -> None:
        """Something unreadable where record ``expected_seq`` would start: a torn write
        if that commit was never acknowledged (returns), damage if it was (raises)."""
        if damage is None:
            return  # cut short by the end of the file: torn, as before preallocation
        last = acknowledged() if acknowledged is not None else None
        if last is None or expected_seq > last:
            return  # past the acknowledged end (or no anchor to tell): never acknowledged
        if isinstance(damage, Exception):
            raise damage
        raise CorruptStoreError(damage)

    def has_data_at(self, offset: int) -> bool:
        """Whether anything (a record, or a torn write) starts at ``offset``."""
        head = os.pread(self._fd, RECORD_HEADER.size + CRC.size, offset)
        return bool(head) and not _zeros(head)

    def has_data_after(self, offset: int) -> bool:
        """Whether any byte from ``offset`` to the end of the file is not zero."""
        while True:
            chunk = os.pread(self._fd, READ_CHUNK, offset)
            if not chunk:
                return False
            if not _zeros(chunk):
                return True
            offset += len(chunk)

    def append(self, records: list[tuple[int, int, bytes]], at: int, *, sync: bool = True) -> int:
        """Write sealed records at offset ``at`` (the known end) and fdatasync (unless the
        caller syncs later, see ``sync``); returns the new end. The records overwrite
        preallocated zeros where the file has them."""
        sealer = self._keyring.active
        blob = bytearray()
        for seq, flags, payload in records:
            header = RECORD_HEADER.pack(RECORD_MAGIC, 1, flags, sealer.key_id, seq,
                                        len(payload) + 28)
            blob += header + CRC.pack(zlib.crc32(header))
            blob += sealer.seal(payload, self._store_id + header)
        end = at + len(blob)
        written = len(blob)
        if end > self._allocated:
            self._allocated = os.fstat(self._fd).st_size  # another process may have grown it
            if end > self._allocated and len(blob) < PREALLOC_MIN:
                step = min(PREALLOC_MAX, max(PREALLOC_MIN, end // 4))
                blob += bytes(step)  # zeros: later commits overwrite them in place
        try:
            try:
                self._write_all(blob, at)
            except OSError:
                if len(blob) == written:
                    raise
                self._truncate_quietly(at)  # no room for the zeros: write the record alone
                del blob[written:]
                self._write_all(blob, at)
            if sync:
                _sync_data(self._fd)
        except OSError as exc:
            self._truncate_quietly(at)
            raise StorageFullError(
                f"commit could not be written to the store: {exc.strerror or exc}; "
                "nothing was committed"
            ) from exc
        self._allocated = max(self._allocated, at + len(blob))
        return end

    def read_range(self, start: int, end: int) -> bytes:
        """The raw bytes of whole records between two record boundaries (a checkpoint moves
        the records written while it ran into the next log as they are: each is sealed with
        its sequence number, not its place)."""
        data = os.pread(self._fd, end - start, start)
        if len(data) != end - start:
            raise CorruptStoreError(f"log file {self.path.name} ends before offset {end}")
        return data

    def append_raw(self, data: bytes, at: int) -> int:
        """Write records read with ``read_range`` at ``at`` and sync; returns the new end."""
        try:
            self._write_all(bytearray(data), at)
            _sync_data(self._fd)
        except OSError as exc:
            raise StorageFullError(f"cannot write the new log: {exc.strerror or exc}") from exc
        return at + len(data)

    def sync(self) -> None:
        """Make every record written so far durable (after appends with ``sync=False``)."""
        _sync_data(self._fd)

    def _write_all(self, blob: bytearray, at: int) -> None:
        written = os.pwrite(self._fd, blob, at)
        if written != len(blob):
            raise OSError(28, "short write (disk full?)")

    def truncate(self, at: int) -> None:
        os.ftruncate(self._fd, at)
        os.fsync(self._fd)
        self._allocated = at

    def _truncate_quietly(self, at: int) -> None:
        try:
            os.ftruncate(self._fd, at)
            self._allocated = at
        except OSError:
            pass
