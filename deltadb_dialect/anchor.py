"""The commit anchor: the last acknowledged sequence number, MAC'd.

Written (not synced) after each commit's sync, so it never runs ahead of the log.
A log that ends before it was cut or replaced by an older copy of itself: refused
at open. (Rolling the whole store back together, like restoring a backup, cannot
be told from a backup.)
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from deltadb_dialect.errors import TamperError
from deltadb_dialect.keys import Keyring

if TYPE_CHECKING:
    from deltadb_dialect.storage import Storage

ANCHOR_BYTES = 40  # sequence number (8) + MAC (32)


class Anchor:
    def __init__(self, storage: Storage, keyring: Keyring, store_id: bytes) -> None:
        self._storage = storage
        self._keyring = keyring
        self._store_id = store_id

    def _mac(self, seq: bytes) -> str:
        return self._keyring.header_mac(b"anchor" + self._store_id + seq)

    def write(self, seq: int) -> None:
        data = seq.to_bytes(8, "big")
        self._storage.write_anchor(data + bytes.fromhex(self._mac(data)))

    def acknowledged(self) -> int | None:
        """The last acknowledged sequence number per the anchor; None if there is none."""
        data = self._storage.read_anchor()
        if data is None:
            return None
        seq, mac = data[:8], data[8:ANCHOR_BYTES]
        if len(data) != ANCHOR_BYTES or not secrets.compare_digest(self._mac(seq), mac.hex()):
            raise TamperError(f"the commit anchor of {self._storage.location} failed to "
                              "authenticate")
        return int.from_bytes(seq, "big")

    def check(self, log_end_seq: int) -> None:
        committed = self.acknowledged()
        if committed is not None and committed > log_end_seq:
            raise TamperError(
                f"the store's log ends at commit {log_end_seq} but commit {committed} was "
                "acknowledged: the log was truncated or replaced by an older copy"
            )
