"""Checkpoints: every live row packed into a new snapshot, and a new log after it.

In the background (``Store`` starts one after a commit makes it due): the rows are read
from the replica file through a connection of its own, at the point of its last commit
(a WAL read snapshot), and sealed into the snapshot file without the store's lock, while
commits go on. Only the switch takes the lock: the records committed meanwhile are
copied as they are into the new log, which the header then names with the snapshot.

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
from deltadb_dialect.replica import Replica
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

    def pack(self, *, header: Header, keyring: Keyring, replayer: Replayer, replica: Replica,
             seq: int) -> dict[str, Any]:
        """Write every row of ``replica`` (a view at ``seq``) into a new snapshot file; returns
        what the header will say of it. Needs no lock: nothing names the file yet."""
        sealer = keyring.active
        catalog = orjson.dumps(replica.catalog())
        return self.storage.write_snapshot(
            store_id=header.store_id, seq=seq, kid=sealer.key_id,
            sealed_catalog=sealer.seal(catalog, catalog_aad(header.store_id, seq)),
            entries=_snapshot_entries(replayer, replica, seq, sealer),
        )

    def new_log(self, *, header: Header, keyring: Keyring, seq: int) -> tuple[str, Log]:
        """A new, empty log after sequence number ``seq``, named by nothing yet."""
        name = self.storage.new_log_name()
        return name, self.storage.create_log(name, store_id=header.store_id, base_seq=seq,
                                             keyring=keyring)

    def switch(self, *, header: Header, keyring: Keyring, snapshot: dict[str, Any], log: Log,
               tail: bytes = b"", new: tuple[str, Log] | None = None,
               new_end: int | None = None) -> Log:
        """Make ``snapshot`` current with a new log holding ``tail`` (the records written
        since the snapshot's point, as they are, or those ``new`` does not hold yet: it
        ends at ``new_end``); the old files are gone (lock held)."""
        log_name, new_log = new or self.new_log(header=header, keyring=keyring,
                                                seq=snapshot["seq"])
        if tail:
            new_log.append_raw(tail, new_log.start if new_end is None else new_end)
        old_files = [header.log["file"]] + ([header.snapshot["file"]] if header.snapshot else [])
        header.snapshot = snapshot
        header.log = {"file": log_name, "base_seq": snapshot["seq"]}
        self.storage.write_header(header, keyring.header_mac)
        log.close()
        self.storage.discard(old_files)
        self._snapshot_bytes = self.storage.snapshot_size(snapshot)
        METRICS["checkpoints"] += 1
        return new_log

    def write(self, *, header: Header, keyring: Keyring, replayer: Replayer,
              log: Log) -> Log:
        """Pack the replica into a snapshot at its sequence number and start an empty log, in
        one go (lock held). Returns the new log."""
        snapshot = self.pack(header=header, keyring=keyring, replayer=replayer,
                             replica=replayer.replica, seq=replayer.seq)
        return self.switch(header=header, keyring=keyring, snapshot=snapshot, log=log)


def _snapshot_entries(replayer: Replayer, replica: Replica, seq: int,
                      sealer: Any) -> Iterator[Entry]:
    """Every live row sealed for a snapshot, each bound to the snapshot's sequence number."""
    store_id = replayer.store_id
    for table in list(replica.tables.values()):
        ttag = replayer.table_tag(table.name)
        for change in replica.export_table(table):
            ktag = replayer.key_tag(table.name, change.key)
            aad = entity_aad(store_id, UPSERT, ttag, ktag, seq)
            yield Entry(UPSERT, ttag, ktag, sealer.seal(orjson.dumps(change.document), aad))
