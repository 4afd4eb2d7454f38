"""A store log kept in PostgreSQL: one row per sealed record.

Rows are addressed by the offsets the records would have in a log file, so the replica's
positions (and ``Checkpointer``'s sizes) mean the same on both storages, and a store moves
between a directory and PostgreSQL as the same bytes. A row is written only inside the
PostgreSQL transaction that holds the store's head row, and committed with it: there are
no torn tails, and every row PostgreSQL holds was acknowledged.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from deltadb_dialect.errors import CorruptStoreError
from deltadb_dialect.keys import Keyring
from deltadb_dialect.log import (
    CRC,
    FILE_HEADER,
    FILE_MAGIC,
    RECORD_HEADER,
    RECORD_MAGIC,
    LogFile,
    Record,
)

if TYPE_CHECKING:
    from deltadb_dialect.pg_storage import PgStorage

FETCH_ROWS = 512  # records fetched per query while catching up


def split_records(data: bytes, at: int) -> list[tuple[int, int, bytes]]:
    """Whole sealed records (as a log holds them) cut apart: (offset, seq, bytes) each."""
    rows: list[tuple[int, int, bytes]] = []
    position = 0
    while position < len(data):
        magic, _version, _flags, _kid, seq, length = RECORD_HEADER.unpack_from(data, position)
        size = RECORD_HEADER.size + CRC.size + length
        if magic != RECORD_MAGIC or position + size > len(data):
            raise CorruptStoreError("a log range does not hold whole records")
        rows.append((at + position, seq, data[position:position + size]))
        position += size
    return rows


def whole_records_end(data: bytes, start: int) -> int:
    """Where a log file's records end: before preallocated zeros, a torn write or the end."""
    position = start
    step = RECORD_HEADER.size + CRC.size
    while position + step <= len(data):
        header = data[position:position + RECORD_HEADER.size]
        (crc,) = CRC.unpack_from(data, position + RECORD_HEADER.size)
        if crc != zlib.crc32(header):
            break
        length = RECORD_HEADER.unpack(header)[5]
        if position + step + length > len(data):
            break
        position += step + length
    return position


class PgLog(LogFile):
    """One log of the store: its records are rows, addressed by the offsets a log file
    would have (so the replica's positions mean the same on every storage)."""

    def __init__(self, storage: PgStorage, name: str, head: bytes, *, store_id: bytes,
                 keyring: Keyring) -> None:
        self.path = Path(name)
        self.name = name
        self._storage = storage
        self._store_id = store_id
        self._keyring = keyring
        self._fd = -1
        self._allocated = 0
        if len(head) != FILE_HEADER.size + CRC.size:
            raise CorruptStoreError(f"log {name} in PostgreSQL has no header")
        magic, file_store_id, self.base_seq = FILE_HEADER.unpack_from(head)
        (crc,) = CRC.unpack_from(head, FILE_HEADER.size)
        if magic != FILE_MAGIC or crc != zlib.crc32(head[:FILE_HEADER.size]):
            raise CorruptStoreError(f"log {name} in PostgreSQL has a damaged header")
        if file_store_id != store_id:
            raise CorruptStoreError(f"log {name} in PostgreSQL belongs to another store")
        self.start = FILE_HEADER.size + CRC.size

    def records(self, offset: int, expected_seq: int,
                acknowledged: Callable[[], int | None] | None = None) -> Iterator[Record]:
        """The records from ``offset``, fetched in batches. Every row PostgreSQL holds was
        committed, so every one was acknowledged: a gap or a record that fails to
        authenticate is damage, never a torn write."""
        every = (lambda: expected_seq + (1 << 40))  # noqa: E731 - all of them acknowledged
        while True:
            rows = self._storage.fetch_records(self.name, offset, FETCH_ROWS)
            for off, seq, digest, data in rows:
                if off != offset:
                    raise CorruptStoreError(f"the log in PostgreSQL lacks records after "
                                            f"sequence {expected_seq - 1}")
                record, consumed = self._parse_one(data, 0, expected_seq, True, every)
                if record is None or consumed != len(data):
                    raise CorruptStoreError(f"log record {expected_seq} in PostgreSQL is "
                                            "damaged")
                offset += consumed
                expected_seq += 1
                self._storage.saw(seq, digest)
                yield Record(record.seq, record.flags, record.kid, record.payload, offset)
            if len(rows) < FETCH_ROWS:
                return

    def append(self, records: list[tuple[int, int, bytes]], at: int, *,
               sync: bool = True) -> int:
        """Insert the sealed records at ``at`` and commit (always: a commit is durable when
        PostgreSQL has committed it, there is no later sync to wait for)."""
        sealer = self._keyring.active
        rows: list[tuple[int, int, bytes]] = []
        off = at
        for seq, flags, payload in records:
            header = RECORD_HEADER.pack(RECORD_MAGIC, 1, flags, sealer.key_id, seq,
                                        len(payload) + 28)
            data = header + CRC.pack(zlib.crc32(header)) + sealer.seal(
                payload, self._store_id + header)
            rows.append((off, seq, data))
            off += len(data)
        last = records[-1][0]
        self._storage.commit_records(self.name, at, rows, end=off, seq=last,
                                     anchor=self._anchor(last))
        return off

    def _anchor(self, seq: int) -> bytes:
        """The commit anchor (as ``anchor.py`` writes it), moved in the commit's transaction."""
        data = seq.to_bytes(8, "big")
        return data + bytes.fromhex(self._keyring.header_mac(b"anchor" + self._store_id + data))

    def read_range(self, start: int, end: int) -> bytes:
        rows = self._storage.fetch_range(self.name, start, end)
        at = start
        for off, data in rows:
            if off != at:
                raise CorruptStoreError(f"the log in PostgreSQL lacks records at offset {at}")
            at += len(data)
        if at != end:
            raise CorruptStoreError(f"the log in PostgreSQL ends before offset {end}")
        return b"".join(data for _, data in rows)

    def append_raw(self, data: bytes, at: int) -> int:
        self._storage.insert_rows(self.name, split_records(data, at))
        return at + len(data)

    def has_data_at(self, offset: int) -> bool:
        """Known from the head the transaction read (no query): a row is written only with
        the head moved past it in the same PostgreSQL transaction, so no torn record is ever
        left where the next one goes."""
        return self._storage.log_grew_past(self, offset)

    def has_data_after(self, offset: int) -> bool:
        return self._storage.has_record(self.name, offset, exact=False)

    def truncate(self, at: int) -> None:
        self._storage.delete_records(self.name, at)

    def sync(self) -> None:
        """Nothing to do: each append was committed by PostgreSQL before it returned."""

    def size(self) -> int:
        return self._storage.log_size(self.name)
