"""Instructions per phase of orm_bench's workload, counted by valgrind's callgrind.

Wall-clock ratios on a shared 2-core VM move by a few percent from one run to the next;
the number of instructions a phase executes does not. For each backend, a child process
under callgrind builds the workload's databases exactly as ``orm_bench.py`` does (a smaller
dataset by default) and counts only the chosen phase. The figures are for A/B comparisons
of code changes and for seeing where a backend's work goes, not a substitute for time: an
instruction of Python costs more cycles than one of SQLCipher's AES or SHA-512 loops.

    .venv/bin/python bench/orm_cost.py                       # bulk_insert, 5,000 messages
    .venv/bin/python bench/orm_cost.py --phase single_commit
    .venv/bin/python bench/orm_cost.py --phase paged_list --backends sqlite,deltadb

Needs valgrind (Debian package ``valgrind``). Each backend takes one to three minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orm_bench as ob  # the workload itself

PHASES = ("bulk_insert", "single_commit", *ob.READ_PHASES)


def callgrind(switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True,
                   capture_output=True)


def child(backend_name: str, phase: str, rows: int) -> None:
    """Run under callgrind: build the databases, count the instructions of one phase."""
    work = Path(tempfile.mkdtemp(prefix="orm-cost-"))
    try:
        key_file = ob.make_key_file(work)
        backend = ob.make_backends(work, key_file, [backend_name])[0]
        engine = backend.connect()
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1").all()
        ob.Base.metadata.create_all(engine)
        data = ob.make_dataset(rows)
        if phase == "bulk_insert":
            gc.collect()
            callgrind("on")
            ob.bulk_insert(engine, data, 1000)
            callgrind("off")
            return
        ob.bulk_insert(engine, data, 1000)
        if phase == "single_commit":
            commits = ob.commit_rows(data, 400)
            ob.single_commits(engine, commits[:200])  # warm: compiled statements, caches
            gc.collect()
            callgrind("on")
            ob.single_commits(engine, commits[200:])
            callgrind("off")
            return
        sizes = ob.sizes_from(argparse.Namespace(quick=False, rows=rows, open_rows=0, reps=1,
                                                 bulk_rounds=1, no_single_row_store=True))
        read = next(p for p in ob.read_phases(data, sizes) if p.name == phase)
        read.run(engine, read.ops)  # warm
        gc.collect()
        callgrind("on")
        read.run(engine, read.ops)
        callgrind("off")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def count(backend_name: str, phase: str, rows: int) -> int:
    with tempfile.TemporaryDirectory(prefix="orm-cost-") as out:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={out}/callgrind.out", sys.executable, __file__,
                   "--child", backend_name, phase, str(rows)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(result.stderr[-2000:])
        return next(int(line.split()[-1].replace(",", ""))
                    for line in result.stderr.splitlines() if "Collected :" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=PHASES, default="bulk_insert")
    parser.add_argument("--rows", type=int, default=5000, help="messages in the dataset")
    parser.add_argument("--backends", default="sqlite,sqlcipher,deltadb")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("orm_cost.py needs valgrind (Debian package valgrind)")
    names = args.backends.split(",")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(names, pool.map(lambda n: count(n, args.phase, args.rows), names),
                          strict=True))
    print(f"{args.phase}, {args.rows:,} messages: instructions under callgrind")
    base = counts.get("sqlite")
    for name, total in counts.items():
        ratio = f"  {total / base:.3f}x sqlite" if base else ""
        print(f"  {name:10s} {total / 1e6:10.1f} million{ratio}")


if __name__ == "__main__":
    main()
