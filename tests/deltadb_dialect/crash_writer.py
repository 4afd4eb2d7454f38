"""A child process for the crash tests: commits numbered transactions and reports each.

Each transaction writes one row to ``batches`` and ``rows_per_batch`` rows to
``items``; some transactions are large enough to span several log records.
The line ``ACK n`` is printed only after commit returned. With ``deferred`` as the third
argument, commits are written in ``Store.deferring_sync()`` blocks (two transactions per block
every third time) and acknowledged only after ``make_durable``.
"""

import os
import sys

from sqlalchemy import create_engine, text

import deltadb_dialect.records
import deltadb_dialect.registry

deltadb_dialect.records.RECORD_LIMIT = 16 * 1024  # force multi-record transactions

store, first = sys.argv[1], int(sys.argv[2])
deferred = sys.argv[3:] == ["deferred"]
engine = create_engine(f"deltadb:///{store}?checkpoint_mb=0.25")
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, size INT)"))
    conn.execute(text("CREATE TABLE IF NOT EXISTS items (batch INT, n INT, pad TEXT, "
                      "PRIMARY KEY (batch, n))"))
print("READY", flush=True)


def commit(batch: int) -> None:
    size = 200 if batch % 7 == 0 else 3
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO batches VALUES (:b, :s)"), {"b": batch, "s": size})
        conn.execute(text("INSERT INTO items VALUES (:b, :n, :p)"),
                     [{"b": batch, "n": n, "p": os.urandom(60).hex()} for n in range(size)])


batch = first
while True:
    if not deferred:
        commit(batch)
        print(f"ACK {batch}", flush=True)
        batch += 1
        continue
    opened = deltadb_dialect.registry.open_stores()[0]
    batches = [batch, batch + 1] if batch % 3 == 0 else [batch]
    with opened.deferring_sync() as written:
        for number in batches:
            commit(number)
    assert written.seq is not None
    opened.make_durable(written.seq)
    for number in batches:
        print(f"ACK {number}", flush=True)
    batch += len(batches)
