"""A background checkpoint's packing, done in a process of its own.

Packing seals every live row again (about 15 µs a row of Python work). In a thread of
the committing process it held the GIL for seconds at a time, and every commit made
meanwhile waited for it: the slowest commits of a large build were those. A child
process packs on another core instead: it opens the replica file through its own
connection, reads the rows at the point of the last commit (one WAL read snapshot),
seals them into a snapshot file that nothing names yet, and prints what the header will
say of it. The parent only waits for it (without the GIL) and then switches under the
store's lock as before.

The store key reaches the child through its standard input, never its arguments or
environment; the child derives everything else from it and the store's header, and
dies with its parent (``PR_SET_PDEATHSIG``), so an orphan never writes on. A snapshot
left by a child killed mid-way is named by no header and removed at the next open.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from deltadb_dialect.cache import EntityCache
from deltadb_dialect.checkpoint import Checkpointer, CheckpointPolicy
from deltadb_dialect.errors import CorruptStoreError, StoreError, TamperError
from deltadb_dialect.keys import Keyring, subkey
from deltadb_dialect.layout import Header
from deltadb_dialect.replay import Replayer
from deltadb_dialect.replica import Replica
from deltadb_dialect.replica_file import FORMAT, UNUSABLE, Position, open_connection, read_state
from deltadb_dialect.storage import Storage, open_storage

PACK_CACHE_MB = 8.0
_PR_SET_PDEATHSIG = 1

METRICS: dict[str, int] = {"packed_in_child": 0}


def pack_replica_file(*, storage: Storage, header: Header, keyring: Keyring, path: Path,
                      key: bytes, cache_mb: float = PACK_CACHE_MB,
                      ) -> tuple[dict[str, Any], Position]:
    """Seal every row of the replica at ``path`` (as of its last commit) into a new snapshot;
    returns what the header will say of it, and the replica's position it holds."""
    conn = open_connection(path, key, cache_mb=cache_mb)
    try:
        conn.execute("BEGIN")  # one read snapshot: the rows and the position agree
        state = read_state(conn)
        if (state is None or state.format != FORMAT or state.store_id != header.store_id
                or state.catalog is None):
            raise StoreError("the replica file has no usable state")
        view = Replica(conn)
        view.schema_history = orjson.loads(state.catalog).get("history", {})
        view.refresh_tables()
        replayer = Replayer(keyring=keyring, store_id=header.store_id, cache=EntityCache(0, 0),
                            statement_cache={}, replica=view)
        snapshot = Checkpointer(storage, CheckpointPolicy()).pack(
            header=header, keyring=keyring, replayer=replayer, replica=view,
            seq=state.position.seq)
        conn.execute("COMMIT")
        return snapshot, state.position
    finally:
        conn.close()


def pack_in_child(*, location: Path, path: Path, store_key: bytes,
                  timeout: float = 3600.0) -> tuple[dict[str, Any], Position]:
    """Run ``pack_replica_file`` in a child process; raises StoreError if it fails."""
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    request = json.dumps({"location": str(location), "replica": str(path),
                          "store_key": store_key.hex()}).encode()
    try:
        done = subprocess.run([sys.executable, "-m", "deltadb_dialect.pack_worker"],
                              input=request, capture_output=True, timeout=timeout, env=env,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StoreError(f"the checkpoint's packing process failed: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise StoreError("the checkpoint's packing process failed: "
                         + (lines[-1] if lines else f"exit status {done.returncode}"))
    answer = json.loads(done.stdout)
    METRICS["packed_in_child"] += 1
    return answer["snapshot"], Position(**answer["position"])


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's kill leaves at worst a snapshot nobody names


def _keyring_for(storage: Storage, store_key: bytes) -> tuple[Header, Keyring]:
    body, mac = storage.read_header()
    store_id = bytes.fromhex(body["store_id"])
    keyring = Keyring(store_id=store_id, store_key=store_key)
    if not secrets.compare_digest(keyring.header_mac(Header.canonical(body)), mac):
        raise TamperError("the store header failed to authenticate")
    header = Header.from_body(body)
    for kid, wrapped in header.data_keys.items():
        keyring.add_wrapped_data_key(kid, wrapped)
    keyring.active_kid = header.active_kid
    return header, keyring


def main() -> int:
    _die_with_parent()
    if os.getppid() == 1:
        return 1  # the parent is already gone
    request = json.loads(sys.stdin.buffer.read())
    store_key = bytes.fromhex(request["store_key"])
    storage = open_storage(request["location"], timeout=0)
    try:
        header, keyring = _keyring_for(storage, store_key)
        snapshot, position = pack_replica_file(
            storage=storage, header=header, keyring=keyring, path=Path(request["replica"]),
            key=subkey(store_key, "replica-file"))
    except (StoreError, CorruptStoreError, OSError, *UNUSABLE) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        storage.close()
    sys.stdout.write(json.dumps({"snapshot": snapshot,
                                 "position": dataclasses.asdict(position)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
