"""Load test of the Open Chat API: N concurrent users chatting with the built-in mock model.

Starts `alembic upgrade head` and a real `uvicorn backend.main:app` (one worker, mock LLM with
no artificial delay) on a free port with a throw-away store, then every simulated user
registers and logs in. Then, for --duration seconds (30), all of them chat: create a
conversation, ask 10 questions, read the history, and again, pausing after each answer like a
reader (200 ms on average, uniformly spread by ±50%; users arrive over the first 200 ms). The
run is timed, not counted, so that the slowest user's last pauses do not stretch the phase.
Prints messages/s, latency percentiles per operation and the server's CPU per message.

    .venv/bin/python bench/api_bench.py                      # 50 users, deltadb store
    .venv/bin/python bench/api_bench.py --think-ms 0         # saturate: maximum messages/s
    .venv/bin/python bench/api_bench.py --think-jitter 0     # users in lockstep
    .venv/bin/python bench/api_bench.py --messages 20        # 20 questions per user, then stop
    .venv/bin/python bench/api_bench.py --store sqlite --users 20 --stream
    .venv/bin/python bench/api_bench.py --url http://127.0.0.1:8000   # an already running server
"""

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(store: str, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    url = f"sqlite:///{workdir}/bench.db" if store == "sqlite" else f"deltadb:///{workdir}/store"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DELTADB_MASTER_KEY": os.environ.get("DELTADB_MASTER_KEY") or secrets.token_hex(32),
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "MOCK_OPENAI": "true",
        "MOCK_OPENAI_DELAY_MS": "0",
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
        # Every simulated user registers from 127.0.0.1.
        "REGISTRATIONS_PER_ADDRESS_PER_HOUR": "1000000",
    }
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        # Keep-alive longer than uvicorn's 5 s default: users sit idle while others sign up,
        # and a connection closed under a client that reuses it would count as an error.
        [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port)]
        + ["--timeout-keep-alive", "120"]
        + (["--workers", str(workers)] if workers > 1 else []),
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(process, base, workdir, timeout=30)
    return process, base


def wait_until_serving(
    process: subprocess.Popen[bytes], base: str, workdir: Path, *, timeout: float
) -> None:
    """Until the server answers its health check; stops the run if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited; see {workdir / 'server.log'}")
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"server did not start within {timeout:.0f} s")


class LeanResponse:
    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code, self.body = status_code, body

    def json(self) -> Any:
        return json.loads(self.body)


class LeanClient:
    """One simulated user's keep-alive HTTP/1.1 connection, with almost no client-side CPU.

    The load generator shares the machine with the server; httpx costs ~3 ms of CPU per
    message here, which would be taken from the server being measured.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> LeanResponse:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        return await self._read_response()

    async def _read_response(self) -> LeanResponse:
        assert self.reader is not None
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        fields = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        if fields.get("transfer-encoding") == "chunked":
            chunks = []
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                chunks.append(await self.reader.readexactly(size + 2))
            await self.reader.readuntil(b"\r\n")
            return LeanResponse(status, b"".join(chunk[:-2] for chunk in chunks))
        return LeanResponse(status, await self.reader.readexactly(int(fields["content-length"])))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)

    async def call(self, name: str, request) -> LeanResponse:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response = await request
        self.latencies[name].append((time.perf_counter() - started) * 1000)
        if response.status_code >= 400:
            self.errors[f"{name} {response.status_code}"] += 1
        return response


async def admitted(http: LeanClient, path: str, body: dict[str, str]) -> LeanResponse:
    """The server sheds a burst of password hashes with 503 and Retry-After: 1; a real client
    waits and tries again (the latency recorded includes the waits)."""
    while (response := await http.request("POST", path, body)).status_code == 503:
        await asyncio.sleep(1)
    return response


async def sign_up(http: LeanClient, recorder: Recorder, name: str) -> dict[str, str]:
    user = {"username": name, "email": f"{name}@bench.example", "password": PASSWORD}
    await recorder.call("register", admitted(http, "/api/auth/register", user))
    credentials = {"username": name, "password": PASSWORD}
    login = await recorder.call("login", admitted(http, "/api/auth/login", credentials))
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def chat(
    http: LeanClient,
    recorder: Recorder,
    headers: dict[str, str],
    args: argparse.Namespace,
    deadline: float,
) -> int:
    """One user: conversations of --per-conversation questions, each followed by reading the
    history, until the deadline (or until --messages questions were asked)."""
    sent, total = 0, args.messages or float("inf")
    if args.think_ms and args.think_jitter:  # users arrive over one think time, not all at once
        await asyncio.sleep(random.uniform(0, args.think_ms) / 1000)
    accept = {"Accept": "text/event-stream" if args.stream else "application/json"}
    while sent < total and time.perf_counter() < deadline:
        created = await recorder.call(
            "create conversation", http.request("POST", "/api/conversations", {}, headers)
        )
        url = f"/api/conversations/{created.json()['uuid']}/messages"
        for number in range(args.per_conversation):
            body = {"content": f"Benchmark question number {number}: how fast is this?"}
            await recorder.call("send message", http.request("POST", url, body, headers | accept))
            sent += 1
            if sent >= total or time.perf_counter() >= deadline:
                break
            if args.think_ms:
                await asyncio.sleep(think_seconds(args))
        await recorder.call("read history", http.request("GET", url, headers=headers))
    listing = http.request("GET", "/api/conversations", headers=headers)
    await recorder.call("list conversations", listing)
    return sent


def think_seconds(args: argparse.Namespace) -> float:
    """A reader's pause: the mean think time, spread by --think-jitter so that users do not
    move in lockstep (with a fixed pause, 50 users who started together keep sending in
    waves of 50, which measures the wave rather than the server)."""
    spread = args.think_ms * args.think_jitter
    return random.uniform(args.think_ms - spread, args.think_ms + spread) / 1000


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def cpu_seconds(pid: int | None) -> tuple[float, float] | None:
    """User and system CPU time used so far by the server (its worker processes included):
    figures other load on the box cannot skew."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = _children(pid)
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user, system = int(fields[11]) / tick, int(fields[12]) / tick
    for child in children:
        child_user, child_system = cpu_seconds(child) or (0.0, 0.0)
        user, system = user + child_user, system + child_system
    return user, system


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(base: str, args: argparse.Namespace, server_pid: int | None = None) -> None:
    recorder = Recorder()
    address = urlsplit(base)
    clients = [
        LeanClient(address.hostname or "127.0.0.1", address.port or 80) for _ in range(args.users)
    ]
    run_id = secrets.token_hex(3)
    names = [f"bench{run_id}u{index}" for index in range(args.users)]
    pairs = zip(clients, names, strict=True)
    headers = await asyncio.gather(*(sign_up(client, recorder, name) for client, name in pairs))
    started, cpu_before = time.perf_counter(), cpu_seconds(server_pid)
    client_cpu_before = time.process_time()
    users = zip(clients, headers, strict=True)
    deadline = started + (args.duration if not args.messages else float("inf"))
    counts = await asyncio.gather(
        *(chat(client, recorder, auth, args, deadline) for client, auth in users)
    )
    elapsed, cpu_after = time.perf_counter() - started, cpu_seconds(server_pid)
    client_cpu = time.process_time() - client_cpu_before
    await asyncio.gather(*(client.close() for client in clients))
    messages = sum(counts)
    mode = "streamed (SSE)" if args.stream else "JSON"
    think = f"think time {args.think_ms} ms ± {args.think_jitter:.0%}"
    print(f"{args.users} users, {messages} messages ({mode}, {think})")
    print(f"chat phase: {elapsed:.2f} s")
    print(f"messages/s: {messages / elapsed:.1f}")
    if cpu_before is not None and cpu_after is not None:
        # Includes the conversation/history calls of the chat phase, so it is an upper bound.
        user, system = (
            (after - before) * 1000 / messages
            for after, before in zip(cpu_after, cpu_before, strict=True)
        )
        print(
            f"server CPU per message (chat phase): {user + system:.2f} ms"
            f" ({user:.2f} user + {system:.2f} system)"
        )
    print(f"benchmark client CPU per message: {client_cpu * 1000 / messages:.2f} ms")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"{'operation':<20} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, values in recorder.latencies.items():
        print(
            f"{name:<20} {len(values):>6} {statistics.median(values):>8.1f} "
            f"{percentile(values, 0.95):>8.1f} {percentile(values, 0.99):>8.1f}"
        )
    if recorder.errors:
        print("errors:", dict(recorder.errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument(
        "--duration", type=float, default=30, help="seconds of chatting (users stop together)"
    )
    parser.add_argument(
        "--messages", type=int, help="instead of --duration: questions per user, then stop"
    )
    parser.add_argument("--per-conversation", type=int, default=10, help="questions per chat")
    parser.add_argument(
        "--think-ms",
        type=int,
        default=200,
        help="mean pause after each answer, like a person reading (0: back to back, saturating)",
    )
    parser.add_argument(
        "--think-jitter",
        type=float,
        default=0.5,
        help="each pause is uniformly random within ± this fraction of --think-ms (0: fixed)",
    )
    parser.add_argument("--stream", action="store_true", help="ask for server-sent events")
    parser.add_argument("--store", choices=["deltadb", "sqlite"], default="deltadb")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--server-pid", type=int, help="with --url: report this process's CPU")
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args.url, args, args.server_pid))
        return
    with tempfile.TemporaryDirectory(prefix="openchat-bench-") as workdir:
        process, base = start_server(args.store, Path(workdir), args.workers)
        try:
            print(
                f"server: {base} (store: {args.store}, {args.workers} uvicorn worker(s), mock LLM)"
            )
            asyncio.run(run(base, args, process.pid))
        except BaseException:
            log_lines = (Path(workdir) / "server.log").read_text().splitlines()
            print("server log (last lines):", *log_lines[-8:], sep="\n", file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
