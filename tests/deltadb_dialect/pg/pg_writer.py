"""A child process for the PostgreSQL store's fault tests: numbered commits, each reported.

    python pg_writer.py URL FIRST [retry]

Each transaction writes one row to ``batches`` and some rows to ``items`` (every seventh one
spans several log records). ``ACK n`` is printed only after the commit returned. With
``retry``, a failed commit is reported as ``ERR n <class> <message>`` and tried again (a
fault test restarts PostgreSQL under it) until it succeeds or turns out to have been made.
"""

import os
import sys
import time

from sqlalchemy import create_engine, exc, text

import deltadb_dialect.records

deltadb_dialect.records.RECORD_LIMIT = 16 * 1024  # force multi-record transactions

url, first = sys.argv[1], int(sys.argv[2])
retry = sys.argv[3:] == ["retry"]
engine = create_engine(url)
while True:
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, "
                              "size INT)"))
            conn.execute(text("CREATE TABLE IF NOT EXISTS items (batch INT, n INT, pad TEXT, "
                              "PRIMARY KEY (batch, n))"))
        break
    except exc.OperationalError:  # another writer creating them at the same moment
        time.sleep(0.05)
print("READY", flush=True)


def commit(batch: int) -> None:
    size = 200 if batch % 7 == 0 else 3
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO batches VALUES (:b, :s)"), {"b": batch, "s": size})
        conn.execute(text("INSERT INTO items VALUES (:b, :n, :p)"),
                     [{"b": batch, "n": n, "p": os.urandom(60).hex()} for n in range(size)])


batch = first
in_doubt = False  # the last attempt failed: PostgreSQL may have committed it all the same
while True:
    try:
        commit(batch)
    except exc.IntegrityError:
        if not in_doubt:
            raise
        print(f"DOUBT {batch} was committed", flush=True)  # the failed attempt went through
    except exc.DBAPIError as error:
        if not retry:
            raise
        print(f"ERR {batch} {type(error).__name__} {error.orig}", flush=True)
        in_doubt = True
        time.sleep(0.05)
        continue
    print(f"ACK {batch}", flush=True)
    in_doubt = False
    batch += 1
