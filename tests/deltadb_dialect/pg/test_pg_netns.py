"""One app server cut off from PostgreSQL: a network namespace of its own, linked to the
cluster's by a veth pair that the test takes down and brings back up."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.deltadb_dialect.pg.conftest import PasswordCluster

HERE = Path(__file__).parent
HOST_IP, APP_IP = "10.213.7.1", "10.213.7.2"


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@pytest.fixture
def namespace() -> Iterator[tuple[str, str]]:
    """A network namespace whose only link is a veth pair to this one: (its name, the link's
    name on this side)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the cut-off test needs root and iproute2 (ip netns, veth)")
    tag = secrets.token_hex(3)
    name, outside, inside = f"ddb-{tag}", f"ddbh{tag}", f"ddbn{tag}"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", name)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", f"{APP_IP}/30", "dev", inside)
        _ip("netns", "exec", name, "ip", "link", "set", inside, "up")
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name, outside
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


class Client:
    """A client process, its lines gathered as they come."""

    def __init__(self, command: list[str], url: str, name: str) -> None:
        self.process = subprocess.Popen(
            [*command, sys.executable, str(HERE / "pg_netns_client.py"), url, name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
        self.lines: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def wait_working(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while sum(line["ok"] for line in self.lines) < 3:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(self.lines[-3:] or self.process.stderr)
            time.sleep(0.1)

    def stop(self) -> list[dict]:
        self.process.terminate()
        self.process.communicate(timeout=30)
        self._reader.join(5)
        return self.lines


@pytest.mark.slow
def test_a_server_cut_off_fails_in_bounded_time_others_go_on_and_it_catches_up(
        master_key, tmp_path, pg_url, pg_cluster: PasswordCluster, namespace) -> None:
    name, outside = namespace
    pg_cluster.restart()  # listening on every address, the veth's too
    options = "timeout=4"  # others wait for the head row at most this long
    setup = create_engine(f"deltadb:///{tmp_path / 'setup'}?storage={pg_url}")
    with setup.begin() as conn:
        conn.execute(text("CREATE TABLE beats (id INTEGER PRIMARY KEY, writer TEXT)"))
    setup.dispose()
    over_veth = pg_url.replace("@127.0.0.1:", f"@{HOST_IP}:")
    cut_off = Client(["ip", "netns", "exec", name],
                     f"deltadb:///{tmp_path / 'a'}?storage={over_veth}&{options}", "a")
    steady = Client([], f"deltadb:///{tmp_path / 'b'}?storage={pg_url}&{options}", "b")
    cut_off.wait_working()
    steady.wait_working()
    cut = time.time()
    _ip("link", "set", outside, "down")
    time.sleep(14)
    back = time.time()
    _ip("link", "set", outside, "up")
    time.sleep(10)
    a_lines, b_lines = cut_off.stop(), steady.stop()

    before = [line for line in a_lines if line["t"] + line["elapsed"] < cut]
    assert before and all(line["ok"] for line in before)
    during = [line for line in a_lines if cut + 1 < line["t"] < back - 6]
    assert during and not any(line["ok"] for line in during)  # no answer from a lost future
    assert all(line["error"] == "OperationalError" for line in during)  # a clean 503
    slowest = max(line["elapsed"] for line in a_lines)
    print(f"cut off: {len(during)} requests failed, the slowest after {slowest:.1f} s")
    assert slowest < 12  # each fails in bounded time
    b_during = [line for line in b_lines if cut < line["t"] < back]
    assert sum(line["ok"] for line in b_during) > 10  # the other server went on
    after = [line for line in a_lines if line["t"] > back + 1]
    assert after and after[-1]["ok"]  # back by itself, without a restart
    last = after[-1]["t"]
    b_acknowledged = sum(line["ok"] for line in b_lines if line["t"] + line["elapsed"] < last)
    assert after[-1]["seen"]["b"] >= b_acknowledged  # caught up with what b wrote meanwhile
