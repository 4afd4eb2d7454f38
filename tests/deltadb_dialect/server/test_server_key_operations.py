"""Key operations on a store while the REST server writes to it (deltadb backend only).

``backup`` during writes must restore to a consistent state (every multi-entity PUT whole or
absent, each writer's sequence without gaps), and ``rotate-key`` must not interrupt the server.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ddb_server_helpers import BACKENDS, run_cli, start_server, stop_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("deltadb" not in BACKENDS, reason="the deltadb dialect is not available"),
]


class PairWriters:
    """Threads that each PUT {a-N-i, b-N-i} in one request, i = 0, 1, 2, ..."""

    def __init__(self, base_url: str, headers: dict[str, str], count: int = 3) -> None:
        self.base_url, self.headers = base_url, headers
        self.acknowledged: dict[int, int] = dict.fromkeys(range(count), 0)  # writer -> next i
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(count)]

    def _run(self, n: int) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                pair = {f"a-{n}-{i:05d}": {"i": i}, f"b-{n}-{i:05d}": {"i": i}}
                response = client.put("/entity/ledger", json=pair)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text}")
                    return
                i += 1
                self.acknowledged[n] = i

    def __enter__(self) -> PairWriters:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def exported_ledger(store: Path, key_file: Path | None = None) -> dict[str, Any]:
    args = ["export", "--store", str(store)]
    if key_file is not None:
        args += ["--key-file", str(key_file)]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {d["key"]: d["document"] for d in lines if d.get("database") == "ledger"}


def assert_consistent(ledger: dict[str, Any], writers: int) -> dict[int, int]:
    """Every pair whole, each writer's sequence gap-free; returns writer -> count."""
    counts = {}
    for n in range(writers):
        a = sorted(int(k.rsplit("-", 1)[1]) for k in ledger if k.startswith(f"a-{n}-"))
        b = sorted(int(k.rsplit("-", 1)[1]) for k in ledger if k.startswith(f"b-{n}-"))
        assert a == b, f"writer {n}: a torn multi-entity PUT"
        assert a == list(range(len(a))), f"writer {n}: a gap in the sequence"
        counts[n] = len(a)
    return counts


def test_backup_during_writes_and_rotate_key_while_serving(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    server = start_server(str(store), tmp_path / "log")
    try:
        token = httpx.post(server.base_url + "/api/login", json={"client_id": "ops"}).json()
        headers = {"Authorization": "Bearer " + token["token"]}
        with PairWriters(server.base_url, headers) as writers:
            time.sleep(1.0)
            before_backup = dict(writers.acknowledged)
            backup = run_cli("backup", str(store), str(tmp_path / "backup"))
            assert backup.returncode == 0, backup.stderr
            time.sleep(0.5)

            new_key = tmp_path / "new.key"
            assert run_cli("keygen", "--out", str(new_key)).returncode == 0
            rotated = run_cli("rotate-key", str(store), "--new-key-file", str(new_key))
            assert rotated.returncode == 0, rotated.stderr
            time.sleep(1.0)  # the server keeps taking writes after the rotation
            after_rotation = dict(writers.acknowledged)
        assert not writers.failures, writers.failures[:3]
        assert sum(after_rotation.values()) > sum(before_backup.values())
        check = httpx.get(server.base_url + "/entity/ledger", params={"key": "a-0-00000"},
                          headers=headers)
        assert check.status_code == 200
        final = dict(writers.acknowledged)
    finally:
        stop_server(server)

    restored = tmp_path / "restored"
    result = run_cli("restore", str(tmp_path / "backup"), str(restored))
    assert result.returncode == 0, result.stderr
    assert run_cli("verify", str(restored)).returncode == 0
    counts = assert_consistent(exported_ledger(restored), len(final))
    for n, count in counts.items():
        assert count >= before_backup[n], "an acknowledged write is missing from the backup"

    # The live store now opens with the new key only, and holds every acknowledged write.
    assert re.search(r"error", run_cli("export", "--store", str(store)).stderr)
    live = assert_consistent(exported_ledger(store, new_key), len(final))
    for n, count in live.items():
        assert count >= final[n]
