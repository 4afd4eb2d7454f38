"""Checkpoints: every live row packed into a new snapshot, and a new empty log after it.

When: once the log holds more than a fraction of the live data (the last snapshot's
size), and at least ``min_bytes``. A fixed threshold would repack the whole store
every few megabytes of writes, so that building a store costs the square of its size;
growing the threshold with the store keeps the packing work a constant per byte
written (each checkpoint packs at most ``1 + 1/ratio`` times what was written since
the one before).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from deltadb_dialect.keys import Keyring
from deltadb_dialect.layout import Header
from deltadb_dialect.log import UPSERT, Entry, entity_aad
from deltadb_dialect.records import catalog_aad
from deltadb_dialect.replay import Replayer
from deltadb_dialect.storage import Log, Storage

METRICS: dict[str, int] = {"checkpoints": 0}


@dataclass(frozen=True)
class CheckpointPolicy:
    min_bytes: int = 64 * 1024 * 1024  # never for a log smaller than this
    ratio: float = 1.0  # log bytes per byte of the last snapshot that make one due

    def due(self, *, log_bytes: int, snapshot_bytes: int) -> bool:
        return log_bytes > max(self.min_bytes, self.ratio * snapshot_bytes)


class Checkpointer:
    """Decides when a checkpoint is due and writes it (caller holds the store's lock)."""

    def __init__(self, storage: Storage, policy: CheckpointPolicy) -> None:
        self.storage = storage
        self.policy = policy
        self._snapshot_bytes: int | None = None  # the current snapshot's size, once looked up

    def due(self, header: Header, log: Log, log_end: int) -> bool:
        log_bytes = log_end - log.start
        if log_bytes <= self.policy.min_bytes:
            return False  # the common case: no need to look at the snapshot
        if self._snapshot_bytes is None:
            snapshot = header.snapshot
            self._snapshot_bytes = self.storage.snapshot_size(snapshot) if snapshot else 0
        return self.policy.due(log_bytes=log_bytes, snapshot_bytes=self._snapshot_bytes)

    def forget(self) -> None:
        """The header changed (another process may have checkpointed): look again."""
        self._snapshot_bytes = None

    def write(self, *, header: Header, keyring: Keyring, replayer: Replayer,
              log: Log) -> Log:
        """Pack the replica into a snapshot at its sequence number; start an empty log.
        Returns the new log; the header names both, the old files are gone."""
        seq = replayer.seq
        sealer = keyring.active
        catalog = orjson.dumps(replayer.replica.catalog())
        snapshot = self.storage.write_snapshot(
            store_id=header.store_id, seq=seq, kid=sealer.key_id,
            sealed_catalog=sealer.seal(catalog, catalog_aad(header.store_id, seq)),
            entries=_snapshot_entries(replayer, seq, sealer),
        )
        log_name = self.storage.new_log_name()
        new_log = self.storage.create_log(log_name, store_id=header.store_id, base_seq=seq,
                                          keyring=keyring)
        old_files = [header.log["file"]] + ([header.snapshot["file"]] if header.snapshot else [])
        header.snapshot = snapshot
        header.log = {"file": log_name, "base_seq": seq}
        self.storage.write_header(header, keyring.header_mac)
        log.close()
        self.storage.discard(old_files)
        self._snapshot_bytes = self.storage.snapshot_size(snapshot)
        METRICS["checkpoints"] += 1
        return new_log


def _snapshot_entries(replayer: Replayer, seq: int, sealer: Any) -> Iterator[Entry]:
    """Every live row sealed for a snapshot, each bound to the snapshot's sequence number."""
    replica = replayer.replica
    store_id = replayer.store_id
    for table in list(replica.tables.values()):
        ttag = replayer.table_tag(table.name)
        for change in replica.export_table(table):
            ktag = replayer.key_tag(table.name, change.key)
            aad = entity_aad(store_id, UPSERT, ttag, ktag, seq)
            yield Entry(UPSERT, ttag, ktag, sealer.seal(orjson.dumps(change.document), aad))
