"""One transaction's changes, sealed into log records as they are captured.

A commit turns each changed row into an entity entry: the row's document
(validated against its table's schema) sealed with AES-GCM under a fresh random
nonce, with associated data binding store, operation, table tag, key tag and
version (``log.entity_aad``). ``RecordBuilder`` does that in one pass over the
changed rows as the capture reads them, so a bulk commit never materializes a
per-row change object: the per-row work is the document, its JSON, a keyed hash
and one AES-GCM call.

Entries are grouped into records of about ``RECORD_LIMIT`` bytes (bounded memory
when replaying a huge transaction); each record takes the next sequence number,
which is the version its entities are bound to, and every record but the last is
flagged ``CONTINUED``. Nothing is written here: a validation error raised while
building leaves the store untouched.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from deltadb_dialect.cache import EntityCache
from deltadb_dialect.crypto import NONCE_BYTES, Sealer
from deltadb_dialect.layout import key_hasher, table_tag
from deltadb_dialect.log import CATALOG, CONTINUED, DELETE, ENTRY, NO_TAG, RESET, UPSERT
from deltadb_dialect.replica import Capture, TableInfo, canonical_key

# A transaction is split into records of about this size, so that replaying a huge
# transaction never needs more than a bounded amount of memory at once.
RECORD_LIMIT = 4 * 1024 * 1024
ENTRY_OVERHEAD = 64  # what an entry adds to its plaintext, roughly (header, nonce, tag)
# Nonces come from the OS CSPRNG a few at a time (each used once): 4 for the first call,
# then 4x more per call up to 256. A one-row commit draws 48 bytes, not kilobytes (the
# cost grows with the size), and a bulk commit makes few calls.
FIRST_NONCES, MOST_NONCES = 4, 256


def catalog_aad(store_id: bytes, seq: int) -> bytes:
    return b"deltadb/catalog|" + store_id + seq.to_bytes(8, "big")


class RecordBuilder:
    """Seals the entries of one transaction, whose first record gets sequence ``seq``."""

    def __init__(self, *, sealer: Sealer, store_id: bytes, naming_key: bytes, seq: int,
                 key_hashers: dict[str, tuple[bytes, Any]], cache: EntityCache,
                 limit: int | None = None) -> None:
        self.records: list[tuple[int, int, bytes]] = []
        self.entities = 0
        self.seq = seq
        self._version = seq.to_bytes(8, "big")
        self._encrypt = sealer.encryptor()
        self._store_id = store_id
        self._naming_key = naming_key
        self._hashers = key_hashers  # table name -> (table tag, keyed hasher); kept by the store
        self._cache = cache if len(cache) else None  # nothing cached: nothing to drop
        self._limit = RECORD_LIMIT if limit is None else limit
        self._parts: list[bytes] = []
        self._size = 0
        self._nonces = b""
        self._at = 0
        self._draw = FIRST_NONCES

    # --- the pieces ------------------------------------------------------------------

    def _tagged(self, name: str) -> tuple[bytes, Any]:
        tagged = self._hashers.get(name)
        if tagged is None:
            ttag = table_tag(self._naming_key, name)
            tagged = self._hashers[name] = (ttag, key_hasher(self._naming_key, ttag))
        return tagged

    def _fresh_nonces(self) -> bytes:
        count = self._draw
        self._draw = min(MOST_NONCES, count * 4)
        return os.urandom(NONCE_BYTES * count)

    def _nonce(self) -> bytes:
        at = self._at
        if at == len(self._nonces):
            self._nonces, at = self._fresh_nonces(), 0
        self._at = at + NONCE_BYTES
        return self._nonces[at:at + NONCE_BYTES]

    def _make_room(self, size: int) -> None:
        """Close the current record first if ``size`` more bytes would overflow it."""
        if self._parts and self._size + size > self._limit:
            self.records.append((self.seq, CONTINUED, b"".join(self._parts)))
            self._parts, self._size = [], 0
            self.seq += 1
            self._version = self.seq.to_bytes(8, "big")
        self._size += size

    def _entity(self, op: bytes, name: str, key: tuple, plain: bytes) -> None:
        self._make_room(len(plain) + ENTRY_OVERHEAD)
        ttag, hasher = self._tagged(name)
        digest = hasher.copy()
        digest.update(canonical_key(key))
        ktag = digest.digest()
        if self._cache is not None:
            self._cache.discard((name, ktag))
        nonce = self._nonce()
        aad = b"deltadb/entity|" + op + self._store_id + ttag + ktag + self._version
        body = nonce + self._encrypt(nonce, plain, aad)
        self._parts += (ENTRY.pack(op, ttag, ktag, len(body)), body)
        self.entities += 1

    # --- what a transaction holds ----------------------------------------------------

    def catalog(self, catalog: dict[str, Any]) -> None:
        plain = orjson.dumps(catalog)
        self._make_room(len(plain) + ENTRY_OVERHEAD)
        nonce = self._nonce()
        body = nonce + self._encrypt(nonce, plain, catalog_aad(self._store_id, self.seq))
        self._parts += (ENTRY.pack(CATALOG, NO_TAG, NO_TAG, len(body)), body)
        self.entities += 1

    def reset(self, name: str) -> None:
        """Every row of table ``name`` is gone (the rows that follow are its new content)."""
        self._make_room(ENTRY_OVERHEAD)
        self._parts.append(ENTRY.pack(RESET, self._tagged(name)[0], NO_TAG, 0))
        self.entities += 1

    def upsert(self, table: TableInfo, key: tuple, document: dict[str, Any]) -> None:
        """A row's whole new state; ``document`` must already be validated."""
        self._entity(UPSERT, table.name, key, orjson.dumps(document))

    def delete(self, table: TableInfo, key: tuple) -> None:
        self._entity(DELETE, table.name, key, canonical_key(key))

    def captured(self, capture: Capture, skip: set[str]) -> None:
        """Seal the rows a transaction changed (tables in ``skip`` excepted): for each
        table, the keys its rows no longer hold, then its changed rows' current states."""
        tables = capture.replica.tables
        for name in [*capture.rowids, *capture.keys]:
            table = tables.get(name)
            if table is None or name in skip:
                continue
            gone, rows = capture.changed_rows(table)
            for key in gone:
                self.delete(table, key)
            if rows:
                self.rows(table, rows)

    def rows(self, table: TableInfo, rows: list[Any]) -> None:
        """Seal rows of one table as upserts, each document validated first: ``upsert``
        inlined, with the builder's state in local variables (the per-row cost of every
        commit)."""
        dumps, pack, encrypt = orjson.dumps, ENTRY.pack, self._encrypt
        name, build, key_of_row = table.name, table.build, table.key_of_row
        ttag, hasher = self._tagged(name)
        head = b"deltadb/entity|" + UPSERT + self._store_id + ttag
        cache, limit = self._cache, self._limit
        nonces, at = self._nonces, self._at
        for row in rows:
            document = build(row) if build is not None else None
            if document is None:  # the general path: encode, then validate
                document = table.document(row)
                table.validator(document)
            plain = dumps(document)
            size = len(plain) + ENTRY_OVERHEAD
            if self._size + size > limit:
                self._make_room(size)
            else:
                self._size += size
            key = key_of_row(row)
            digest = hasher.copy()
            digest.update(b"[%d]" % key[0] if len(key) == 1 and type(key[0]) is int
                          else canonical_key(key))
            ktag = digest.digest()
            if cache is not None:
                cache.discard((name, ktag))
            if at == len(nonces):
                nonces, at = self._fresh_nonces(), 0
            nonce = nonces[at:at + NONCE_BYTES]
            at += NONCE_BYTES
            body = nonce + encrypt(nonce, plain, head + ktag + self._version)
            self._parts += (pack(UPSERT, ttag, ktag, len(body)), body)
        self._nonces, self._at = nonces, at
        self.entities += len(rows)

    def finish(self) -> list[tuple[int, int, bytes]]:
        """The records, the last one without ``CONTINUED``; ``seq`` is then the last one's."""
        self.records.append((self.seq, 0, b"".join(self._parts)))
        self._parts = []
        return self.records
