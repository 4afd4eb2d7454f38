"""REST benchmark of the DeltaDB entity server: 32 concurrent clients over loopback.

Starts the server itself (uvicorn worker processes on a free loopback port over a temporary
store), loads it with GET, PUT and mixed phases, and prints ops/s, p50/p95/p99 and the ratio
to DeltaDatabase's published figure (about 1,000 ops/s for GET and PUT on a 2-vCPU runner).

    .venv/bin/python bench/rest_bench.py                 # deltadb store, 2 server workers
    .venv/bin/python bench/rest_bench.py --backend sqlite --seconds 5 --json out.json

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio streams, so that the
client spends as little of the machine's two cores as possible (httpx would need a core of its
own at these rates and measure itself rather than the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DELTADATABASE_OPS = 1000.0  # DeltaDatabase's published GET/PUT rate on a 2-vCPU runner
DB = "benchdb"


@dataclass
class PhaseResult:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def ops_per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def as_json(self) -> dict[str, float | int | str]:
        return {"phase": self.name, "ops": len(self.latencies), "errors": self.errors,
                "ops_per_second": round(self.ops_per_second, 1),
                "p50_ms": round(self.percentile(0.50), 3),
                "p95_ms": round(self.percentile(0.95), 3),
                "p99_ms": round(self.percentile(0.99), 3),
                "ratio_to_deltadatabase": round(self.ops_per_second / DELTADATABASE_OPS, 2)}


class Connection:
    """One keep-alive HTTP/1.1 connection; requests are sent one at a time."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def document(i: int) -> dict[str, object]:
    """A chat session of a few messages (~300 bytes of JSON), like DeltaDatabase's chat example."""
    return {"messages": [{"role": "user", "content": f"Question {i}: how do I read a file?"},
                         {"role": "assistant", "content": "Use open(path).read(); " * 4}],
            "n": i}


def deltadb_works() -> bool:
    probe = ("import os,tempfile,sqlalchemy\n"
             "d=tempfile.mkdtemp()\n"
             "e=sqlalchemy.create_engine('deltadb:///'+d+'/s')\n"
             "c=e.connect(); c.exec_driver_sql('select 1'); c.close()\n")
    env = {**os.environ, "DELTADB_MASTER_KEY": secrets.token_hex(32)}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                            timeout=60, cwd=ROOT)
    return result.returncode == 0


def start_server(url: str, port: int, workers: int, env: dict[str, str],
                 log_path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "deltadb_dialect", "serve", "--store", url,
               "--port", str(port), "--workers", str(workers), "--log-level", "warning",
               "--allow-client-id-login"]
    # The server's output goes to a file: an unread pipe would fill and stall the server.
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("server exited:\n" + log_path.read_text(errors="replace"))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("server did not start within 60 s")


def login(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/login", data=json.dumps({"client_id": "bench"}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["token"])


async def preload(port: int, token: str, keys: int) -> None:
    conn = Connection("127.0.0.1", port, token)
    await conn.open()
    for start in range(0, keys, 200):
        batch = {f"session_{i:06d}": document(i) for i in range(start, min(keys, start + 200))}
        status, body = await conn.request("PUT", f"/entity/{DB}", json.dumps(batch).encode())
        if status != 200:
            raise SystemExit(f"preload failed: {status} {body[:200]!r}")
    conn.close()


async def run_phase(name: str, port: int, token: str, clients: int, seconds: float, keys: int,
                    put_share: float) -> PhaseResult:
    result = PhaseResult(name, seconds)
    bodies = [json.dumps({f"session_{i:06d}": document(i + 1)}).encode() for i in range(keys)]

    async def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = Connection("127.0.0.1", port, token)
        await conn.open()
        deadline = time.perf_counter() + seconds
        try:
            while (now := time.perf_counter()) < deadline:
                i = rng.randrange(keys)
                if rng.random() < put_share:
                    status, _ = await conn.request("PUT", f"/entity/{DB}", bodies[i])
                else:
                    status, _ = await conn.request("GET", f"/entity/{DB}?key=session_{i:06d}")
                if status == 200:
                    result.latencies.append(time.perf_counter() - now)
                else:
                    result.errors += 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    result.seconds = time.perf_counter() - started
    return result


def print_table(results: list[PhaseResult], description: str) -> None:
    print(f"\n{description}")
    print(f"{'phase':<10}{'ops':>9}{'ops/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}{'x DeltaDatabase':>17}")
    for r in results:
        print(f"{r.name:<10}{len(r.latencies):>9}{r.ops_per_second:>10.0f}{r.percentile(.5):>9.2f}"
              f"{r.percentile(.95):>9.2f}{r.percentile(.99):>9.2f}{r.errors:>8}"
              f"{r.ops_per_second / DELTADATABASE_OPS:>16.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["auto", "deltadb", "sqlite"], default="auto")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--mixed-put-share", type=float, default=0.2)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    backend = args.backend
    if backend == "auto":
        backend = "deltadb" if deltadb_works() else "sqlite"
    workdir = tempfile.mkdtemp(prefix="rest-bench-")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DELTADB_ADMIN_KEY", None)  # development mode: client_id login on loopback
    if backend == "deltadb":
        env.setdefault("DELTADB_MASTER_KEY", secrets.token_hex(32))
        url = f"deltadb:///{workdir}/store"
    else:
        url = f"sqlite:///{workdir}/bench.db"
    port = free_port()
    log_path = Path(workdir) / "server.log"
    server = start_server(url, port, args.workers, env, log_path)
    try:
        token = login(port)
        asyncio.run(preload(port, token, args.keys))
        phases = [("GET", 0.0), ("PUT", 1.0), ("MIXED", args.mixed_put_share)]
        results = [asyncio.run(run_phase(name, port, token, args.clients, args.seconds,
                                         args.keys, share)) for name, share in phases]
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    storage = ("AES-256-GCM, durable: fsync per commit, PUTs group-committed"
               if backend == "deltadb" else "sqlite WAL, synchronous=FULL, group-committed")
    description = (f"backend={backend} ({storage}), server workers={args.workers}, "
                   f"clients={args.clients}, {args.seconds:g}s per phase, {args.keys} keys, "
                   f"~{len(json.dumps(document(1)))} B documents, "
                   f"MIXED = {1 - args.mixed_put_share:.0%} GET / {args.mixed_put_share:.0%} PUT, "
                   f"cores={os.cpu_count()}")
    print_table(results, description)
    if args.json:
        summary = {"description": description, "results": [r.as_json() for r in results]}
        Path(args.json).write_text(json.dumps(summary, indent=2))
    errors = sum(r.errors for r in results)
    if errors:
        print(f"{errors} request(s) failed; server log: {log_path}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    if sys.platform != "win32":
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    raise SystemExit(main())
