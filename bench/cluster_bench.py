"""Several app servers on one store: DeltaDB kept in PostgreSQL vs the app on plain PostgreSQL.

Starts a throwaway PostgreSQL cluster (initdb, loopback, fsync on: commits are durable), then
for 1, 2 and 3 app servers (separate `uvicorn backend.main:app` processes, as on separate
hosts: each DeltaDB server has its own replica directory) runs the chat workload of
`bench/api_bench.py` (users spread over the servers round-robin; mock model without delay)
on two stores side by side in the same run:

- `deltadb+pg`: `deltadb:///HOST_DIR?storage=postgresql://...` (PostgreSQL holds ciphertext)
- `postgresql`: `postgresql+psycopg://...` (the same app, no encryption)

Prints messages/s, send p50/p95 and CPU per message (the app servers' and PostgreSQL's own,
apart), then the durable commits/s ceiling: 3 processes committing one-row transactions on
the PostgreSQL-backed store as fast as they can.

    flock /tmp/bench.lock .venv/bin/python bench/cluster_bench.py
    flock /tmp/bench.lock .venv/bin/python bench/cluster_bench.py --duration 10 --servers 1 3
"""

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO)]

import api_bench  # noqa: E402
from api_bench import LeanClient, Recorder, chat, cpu_seconds, percentile, sign_up  # noqa: E402

from tests.pg_cluster import USER, PostgresCluster  # noqa: E402


def server_env(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "ENVIRONMENT": "production",
            "MOCK_OPENAI": "true", "MOCK_OPENAI_DELAY_MS": "0", "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO), "REGISTRATIONS_PER_ADDRESS_PER_HOUR": "1000000"}


def start_servers(urls: list[str], workdir: Path) -> tuple[list[subprocess.Popen[bytes]],
                                                           list[str]]:
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO,
                   env=server_env(urls[0]), check=True, capture_output=True)
    processes, bases = [], []
    for index, url in enumerate(urls):
        port = api_bench.free_port()
        log = open(workdir / f"server{index}.log", "wb")  # noqa: SIM115 - lives with the server
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port),
             "--timeout-keep-alive", "120"], cwd=REPO, env=server_env(url), stdout=log,
            stderr=subprocess.STDOUT))
        bases.append(f"http://127.0.0.1:{port}")
    for base, process in zip(bases, processes, strict=True):
        api_bench_wait(base, process)
    return processes, bases


def api_bench_wait(base: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited (status {process.returncode})")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{base} did not start")


def postgres_pid(cluster: PostgresCluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


async def chat_phase(bases: list[str], args: argparse.Namespace,
                     pids: list[int]) -> dict[str, float]:
    recorder = Recorder()
    clients = []
    for index in range(args.users):
        host_port = bases[index % len(bases)].removeprefix("http://").split(":")
        clients.append(LeanClient(host_port[0], int(host_port[1])))
    run_id = secrets.token_hex(3)
    headers = await asyncio.gather(*(sign_up(client, recorder, f"c{run_id}u{i}")
                                     for i, client in enumerate(clients)))
    before = [cpu_seconds(pid) or (0.0, 0.0) for pid in pids]
    started = time.perf_counter()
    deadline = started + args.duration
    counts = await asyncio.gather(*(chat(client, recorder, auth, args, deadline)
                                    for client, auth in zip(clients, headers, strict=True)))
    elapsed = time.perf_counter() - started
    after = [cpu_seconds(pid) or (0.0, 0.0) for pid in pids]
    await asyncio.gather(*(client.close() for client in clients))
    messages = sum(counts)
    cpu = [sum(a) - sum(b) for a, b in zip(after, before, strict=True)]
    sends = recorder.latencies["send message"]
    return {"messages/s": messages / elapsed, "p50": statistics.median(sends),
            "p95": percentile(sends, 0.95), "app_cpu_ms": sum(cpu[:-1]) * 1000 / messages,
            "pg_cpu_ms": cpu[-1] * 1000 / messages,
            "errors": float(sum(recorder.errors.values()))}


def one_round(cluster: PostgresCluster, kind: str, servers: int, args: argparse.Namespace,
              workdir: Path) -> dict[str, float]:
    database = f"bench_{kind.replace('+', '_')}_{servers}_{secrets.token_hex(2)}"
    with psycopg.connect(host=str(cluster.root), port=cluster.port, user=USER,
                         dbname="postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    pg = f"postgresql://{USER}@127.0.0.1:{cluster.port}/{database}"
    if kind == "deltadb+pg":
        urls = [f"deltadb:///{workdir / database / f'host{i}'}?storage={pg}"
                for i in range(servers)]
    else:
        urls = [pg.replace("postgresql://", "postgresql+psycopg://")] * servers
    processes, bases = start_servers(urls, workdir)
    try:
        pids = [process.pid for process in processes] + [postgres_pid(cluster)]
        return asyncio.run(chat_phase(bases, args, pids))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


_COMMITTER = """
    import sys, time
    from sqlalchemy import create_engine, text
    engine = create_engine(sys.argv[1])
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY, v TEXT)"))
    print("READY", flush=True)
    sys.stdin.readline()  # every writer has opened the store: go
    end = time.time() + float(sys.argv[2])
    done = 0
    while time.time() < end:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO c (v) VALUES ('x')"))
        done += 1
    print(done)
"""


def commit_ceiling(cluster: PostgresCluster, workdir: Path, seconds: float,
                   writers: int = 3) -> float:
    database = f"bench_commits_{secrets.token_hex(2)}"
    with psycopg.connect(host=str(cluster.root), port=cluster.port, user=USER,
                         dbname="postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    pg = f"postgresql://{USER}@127.0.0.1:{cluster.port}/{database}"
    subprocess.run([sys.executable, "-c", textwrap.dedent(_COMMITTER),
                    f"deltadb:///{workdir / database / 'setup'}?storage={pg}", "0"],
                   input="go\n", env=os.environ, check=True, capture_output=True, text=True)
    children = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(_COMMITTER),
                                  f"deltadb:///{workdir / database / f'w{i}'}?storage={pg}",
                                  str(seconds)], env=os.environ, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for i in range(writers)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "READY"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    total = sum(int(child.communicate(timeout=seconds + 120)[0].split()[-1])
                for child in children)
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per round")
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--think-ms", type=float, default=0.0)
    parser.add_argument("--think-jitter", type=float, default=0.5)
    parser.add_argument("--per-conversation", type=int, default=10)
    parser.add_argument("--commit-seconds", type=float, default=10.0)
    args = parser.parse_args()
    args.messages, args.stream = 0, False
    os.environ.setdefault("DELTADB_MASTER_KEY", secrets.token_hex(32))
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as work, PostgresCluster() as pg:
        with psycopg.connect(host=str(pg.root), port=pg.port, user=USER, dbname="postgres",
                             autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET fsync = on")  # the test cluster starts without it
            admin.execute("SELECT pg_reload_conf()")
        print(f"{args.users} users, {args.duration:g} s per round, think {args.think_ms:g} ms; "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the start")
        print(f"{'store':<12} {'servers':>7} {'msg/s':>8} {'send p50':>9} {'p95':>8} "
              f"{'app CPU/msg':>12} {'PG CPU/msg':>11} {'errors':>7}")
        for servers in args.servers:
            for kind in ("deltadb+pg", "postgresql"):
                got = one_round(pg, kind, servers, args, Path(work))
                print(f"{kind:<12} {servers:>7} {got['messages/s']:>8.1f} {got['p50']:>7.1f}ms "
                      f"{got['p95']:>6.1f}ms {got['app_cpu_ms']:>10.2f}ms "
                      f"{got['pg_cpu_ms']:>9.2f}ms {int(got['errors']):>7}", flush=True)
        rate = commit_ceiling(pg, Path(work), args.commit_seconds)
        print(f"durable one-row commits/s, 3 writer processes on the PostgreSQL-backed store: "
              f"{rate:.0f}")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
