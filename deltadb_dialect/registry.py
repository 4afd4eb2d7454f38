"""The process-wide registry: one ``Store`` per store location, shared by its connections."""

from __future__ import annotations

import os
import secrets
import threading

from deltadb_dialect import checkpoint, lock, replay, replica_keeper
from deltadb_dialect import keys as keymod
from deltadb_dialect.errors import WrongKeyError
from deltadb_dialect.keys import MasterKeySource, MasterWrap
from deltadb_dialect.layout import unb64
from deltadb_dialect.store import METRICS, Store, StoreOptions

_registry: dict[str, Store] = {}
_registry_lock = threading.Lock()


def connect_store(path: str, source: MasterKeySource, options: StoreOptions) -> Store:
    real = os.path.realpath(path)
    with _registry_lock:
        store = _registry.get(real)
        if store is None:
            store = Store.open(real, source, options)
            _registry[real] = store
        elif not secrets.compare_digest(store.key_fingerprint, source.fingerprint()):
            # Same process, same store, another key: check it properly instead of trusting it.
            _check_key_only(store, source)
        store.refcount += 1
        return store


def disconnect_store(store: Store) -> None:
    with _registry_lock:
        store.refcount -= 1
        if store.refcount > 0:
            return
        _registry.pop(str(store.location), None)
    store.wait_for_checkpoint()  # its switch takes the store's lock
    with store.lock.mutex:
        store.close()


def open_stores() -> list[Store]:
    with _registry_lock:
        return list(_registry.values())


def _after_fork_in_child() -> None:
    for store in _registry.values():
        store._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def store_metrics() -> dict[str, int]:
    """Process-wide counters, for /metrics endpoints (no contents, no keys)."""
    metrics = {**METRICS, **replica_keeper.METRICS, **replay.METRICS, **checkpoint.METRICS,
               **lock.METRICS}
    stores = open_stores()
    metrics["cache_hits"] = sum(s.cache.hits for s in stores)
    metrics["cache_misses"] = sum(s.cache.misses for s in stores)
    metrics["cache_entries"] = sum(len(s.cache) for s in stores)
    metrics["open_stores"] = len(stores)
    return metrics


def _check_key_only(store: Store, source: MasterKeySource) -> None:
    path = store.location
    body, _ = store.storage.read_header()
    master = keymod.master_key_for(source, body.get("kdf"))
    if MasterWrap(master, bytes.fromhex(body["store_id"])).unwrap_store_key(
        unb64(body["store_key"])
    ) is None:
        raise WrongKeyError(f"the master key does not open the store at {path}")
