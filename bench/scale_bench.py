"""DeltaDB at scale on one host: SQLite, SQLCipher and a DeltaDB store side by side, in one run.

For each size (``--rows``, default 100,000 and 1,000,000 chat-shaped rows of about 600 bytes
of text), each backend:

* ``build``     inserts the rows in ``--batch``-row transactions (default 5,000); the
                latency of each ``COMMIT`` is recorded (p99, p99.9, max), and of each
                batch's INSERT and COMMIT together (DeltaDB seals a big transaction's rows
                at the end of the statement that wrote them, so both are reported)
* ``open``      a fresh process: create the engine and answer the first query (after a
                clean close, and again after a process that wrote one row was ``kill -9``'d);
                the resident memory the opening and a round of reads added (VmRSS); for
                DeltaDB also with its replica file deleted (the open rebuilds it)
* ``point``     one message by primary key, one connection per read (a request)
* ``last_50``   a conversation's last 50 messages (ORDER BY id DESC LIMIT 50)
* ``commit``    one-row durable commits

Backends: ``sqlite:///FILE`` (WAL, synchronous=FULL), SQLCipher 4 through ``sqlcipher3``
with the same pragmas, and ``deltadb:///STORE`` (fresh random key). Ratios are DeltaDB's
figure over SQLCipher's and SQLite's. A benchmark, not a test: run it alone on the host::

    flock /tmp/bench.lock .venv/bin/python bench/scale_bench.py --rows 100000 1000000
    flock /tmp/bench.lock .venv/bin/python bench/scale_bench.py --rows 3000000 --only deltadb

Every temporary file lives under one temporary directory (``--dir``), removed at exit.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

ROOT = Path(__file__).resolve().parents[1]
SQLCIPHER_PASSPHRASE = "scale-bench-passphrase"
PER_CONVERSATION = 50
BODY = ("The quick brown fox jumps over the lazy dog; " * 14)[:600]


def urls(work: Path, key_file: Path, deltadb_options: str = "") -> dict[str, str]:
    extra = f"&{deltadb_options}" if deltadb_options else ""
    return {
        "sqlite": f"sqlite:///{work / 'bench.sqlite'}",
        "sqlcipher": f"sqlite+pysqlcipher://:{SQLCIPHER_PASSPHRASE}@/{work / 'bench.sqlcipher'}",
        "deltadb": f"deltadb:///{work / 'bench.deltadb'}?key_file={key_file}{extra}",
    }


def engine_for(url: str) -> Engine:
    engine = create_engine(url)
    if not url.startswith("deltadb"):
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()
    return engine


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- phases -----------------------------------------------------------------------------------

def build(engine: Engine, rows: int, batch: int) -> dict[str, float]:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE messages (id INTEGER PRIMARY KEY, "
                          "conversation_id INTEGER NOT NULL, role TEXT NOT NULL, "
                          "body TEXT NOT NULL, created_at TEXT NOT NULL)"))
        conn.execute(text("CREATE INDEX ix_messages_conversation ON messages "
                          "(conversation_id, id)"))
    insert = text("INSERT INTO messages (id, conversation_id, role, body, created_at) "
                  "VALUES (:id, :c, :r, :b, :t)")
    commits: list[float] = []
    batches: list[float] = []  # the INSERT and its COMMIT: a transaction's whole time
    started = time.perf_counter()
    for first in range(1, rows + 1, batch):
        last = min(rows, first + batch - 1)
        params = [{"id": i, "c": (i - 1) // PER_CONVERSATION + 1,
                   "r": "user" if i % 2 else "assistant", "b": f"{i} {BODY}",
                   "t": "2026-12-01T12:00:00"} for i in range(first, last + 1)]
        conn = engine.connect()
        transaction = conn.begin()
        began = time.perf_counter()
        conn.execute(insert, params)
        before = time.perf_counter()
        transaction.commit()
        done = time.perf_counter()
        commits.append(done - before)
        batches.append(done - began)
        conn.close()
    elapsed = time.perf_counter() - started
    return {"build_s": elapsed, "commit_p99_ms": percentile(commits, 0.99) * 1e3,
            "commit_p999_ms": percentile(commits, 0.999) * 1e3,
            "commit_max_ms": max(commits) * 1e3, "commits": len(commits),
            "batch_p99_ms": percentile(batches, 0.99) * 1e3,
            "batch_max_ms": max(batches) * 1e3}


def reads(engine: Engine, rows: int, *, count: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    conversations = max(1, rows // PER_CONVERSATION)
    point = text("SELECT id, conversation_id, role, body FROM messages WHERE id = :id")
    last = text("SELECT id, role, body FROM messages WHERE conversation_id = :c "
                "ORDER BY id DESC LIMIT 50")
    results: dict[str, float] = {}
    for name, statement, draw in (("point_ms", point, lambda: {"id": rng.randint(1, rows)}),
                                  ("last_50_ms", last,
                                   lambda: {"c": rng.randint(1, conversations)})):
        times = []
        for _ in range(count):
            params = draw()
            before = time.perf_counter()
            with engine.connect() as conn:
                conn.execute(statement, params).all()
            times.append(time.perf_counter() - before)
        results[name] = statistics.median(times) * 1e3
    commit = text("INSERT INTO messages (conversation_id, role, body, created_at) "
                  "VALUES (:c, 'user', :b, '2026-12-01T12:00:00')")
    times = []
    for _ in range(max(50, count // 10)):
        before = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(commit, {"c": rng.randint(1, conversations), "b": BODY})
        times.append(time.perf_counter() - before)
    results["commit_ms"] = statistics.median(times) * 1e3
    return results


_OPEN = """
    import os, sys, time
    started = time.perf_counter()
    from sqlalchemy import create_engine, text
    sys.path.insert(0, {root!r})
    import bench.scale_bench as bench

    def rss_kb():
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmRSS"))

    base = rss_kb()
    opened = time.perf_counter()
    engine = bench.engine_for(sys.argv[1])
    with engine.connect() as conn:
        conn.execute(text("SELECT body FROM messages WHERE id = 1")).all()
    first = time.perf_counter() - opened
    rows = int(sys.argv[2])
    with engine.connect() as conn:  # a round of reads across the store
        for i in range(1, rows, max(1, rows // 500)):
            conn.execute(text("SELECT body FROM messages WHERE id = :i"), {{"i": i}}).all()
            conn.execute(text("SELECT body FROM messages WHERE conversation_id = :c "
                              "ORDER BY id DESC LIMIT 50"), {{"c": i // 50 + 1}}).all()
    print(first, (rss_kb() - base) / 1024)
"""

_KILLED = """
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from sqlalchemy import text
    import bench.scale_bench as bench
    engine = bench.engine_for(sys.argv[1])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO messages (conversation_id, role, body, created_at) "
                          "VALUES (1, 'user', 'before the kill', 'now')"))
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code.format(root=str(ROOT))),
                           *args], capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(done.stderr[-2000:])
    return done.stdout


def open_costs(url: str, rows: int) -> dict[str, float]:
    first, memory = map(float, _python(_OPEN, url, str(rows)).split())
    _python(_KILLED, url)
    after_kill, _ = map(float, _python(_OPEN, url, str(rows)).split())
    return {"open_s": first, "open_after_kill_s": after_kill, "rss_mb": memory}


def rebuild_cost(url: str, store: Path, rows: int) -> dict[str, float]:
    """DeltaDB only: a new process's first query with the replica file deleted (the open
    rebuilds it from the snapshot and the log), then again once it is rebuilt."""
    (store / "store.replica").unlink()
    for path in store.glob("replica-*"):
        path.unlink()
    rebuilt, _ = map(float, _python(_OPEN, url, str(rows)).split())
    return {"rebuild_s": rebuilt}


def disk_mb(path: Path) -> float:
    files = [path] if path.is_file() else list(path.rglob("*"))
    siblings = list(path.parent.glob(path.name + "-*")) if path.is_file() else []
    return sum(p.stat().st_size for p in files + siblings if p.is_file()) / 2**20


# --- the run ----------------------------------------------------------------------------------

def run_size(work: Path, key_file: Path, rows: int, args: argparse.Namespace
             ) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, url in urls(work, key_file, args.deltadb_options).items():
        if name not in args.only:
            continue
        print(f"  {name}: building {rows:,} rows ...", file=sys.stderr, flush=True)
        engine = engine_for(url)
        figures = build(engine, rows, args.batch)
        engine.dispose()
        figures.update(open_costs(url, rows))
        if name == "deltadb":
            figures.update(rebuild_cost(url, work / "bench.deltadb", rows))
        engine = engine_for(url)
        figures.update(reads(engine, rows, count=args.reads, seed=rows))
        engine.dispose()
        target = work / {"sqlite": "bench.sqlite", "sqlcipher": "bench.sqlcipher",
                         "deltadb": "bench.deltadb"}[name]
        figures["disk_mb"] = disk_mb(target)
        results[name] = figures
        print(f"  {name}: {json.dumps({k: round(v, 3) for k, v in figures.items()})}",
              file=sys.stderr, flush=True)
        for path in work.glob("bench.*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return results


METRICS = [("open_s", "open: first query, new process (s)"),
           ("open_after_kill_s", "open after kill -9 (s)"),
           ("rebuild_s", "open with the replica deleted: rebuild (s)"),
           ("rss_mb", "RSS added by opening and reading (MB)"),
           ("build_s", "build (s)"), ("commit_p99_ms", "build COMMIT p99 (ms)"),
           ("commit_p999_ms", "build COMMIT p99.9 (ms)"),
           ("commit_max_ms", "build COMMIT max (ms)"),
           ("batch_p99_ms", "build INSERT + COMMIT p99 (ms)"),
           ("batch_max_ms", "build INSERT + COMMIT max (ms)"),
           ("point_ms", "point read (ms)"), ("last_50_ms", "last 50 (ms)"),
           ("commit_ms", "one-row commit (ms)"), ("disk_mb", "on disk (MB)")]


def report(rows: int, results: dict[str, dict[str, float]]) -> str:
    names = [n for n in ("sqlite", "sqlcipher", "deltadb") if n in results]
    ratio = "deltadb" in results and len(names) > 1
    head = f"| {rows:,} rows | " + " | ".join(names) + (
        " | vs SQLCipher | vs SQLite |" if ratio else " |")
    lines = [head, "|---|" + "---:|" * (len(names) + (2 if ratio else 0))]
    for key, label in METRICS:
        if not any(key in results[n] for n in names):
            continue
        cells = [f"{results[n][key]:.3g}" if key in results[n] else "-" for n in names]
        if ratio:
            for other in ("sqlcipher", "sqlite"):
                base = results.get(other, {}).get(key)
                mine = results["deltadb"].get(key)
                cells.append(f"{mine / base:.2f}x" if base and mine is not None else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--only", nargs="+", default=["sqlite", "sqlcipher", "deltadb"],
                        choices=["sqlite", "sqlcipher", "deltadb"])
    parser.add_argument("--dir", help="where the temporary databases go (default: $TMPDIR)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--deltadb-options", default="",
                        help="more query options for the DeltaDB URL, e.g. wal_thread=false")
    args = parser.parse_args()
    # An installed driver opens from compiled bytecode, as SQLAlchemy and sqlcipher3 do here;
    # with PYTHONDONTWRITEBYTECODE set, every timed open would compile the driver's sources.
    compileall.compile_dir(ROOT / "deltadb_dialect", quiet=1)
    work = Path(tempfile.mkdtemp(prefix="scale-bench-", dir=args.dir))
    try:
        key_file = work / "master.key"
        key_file.write_text(os.urandom(32).hex() + "\n")
        key_file.chmod(0o600)
        everything = {}
        for rows in args.rows:
            print(f"{rows:,} rows", file=sys.stderr, flush=True)
            everything[rows] = run_size(work, key_file, rows, args)
            print(report(rows, everything[rows]), flush=True)
            print(flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(everything, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
