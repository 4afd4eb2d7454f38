"""An app-server stand-in for the network cut-off test: one transaction every 0.2 s.

    python pg_netns_client.py URL NAME

Each attempt reads how many rows each writer has made and adds one row of its own (again
when another writer changed the counts first), then prints one JSON line: when it started,
how long it took, whether it worked (the error's class if not) and the counts it saw.
"""

import json
import sys
import time

from sqlalchemy import create_engine, exc, text

url, name = sys.argv[1], sys.argv[2]
engine = create_engine(url, pool_pre_ping=False)
while True:
    started = time.time()
    line: dict[str, object] = {"t": started}
    for attempt in range(5):  # a serialization failure is run again, as SERIALIZABLE asks
        try:
            with engine.begin() as conn:
                counts = dict(
                    conn.execute(text("SELECT writer, count(*) FROM beats GROUP BY writer")).all()
                )
                conn.execute(text("INSERT INTO beats (writer) VALUES (:w)"), {"w": name})
            line.update(ok=True, seen=counts, retries=attempt)
            break
        except exc.DBAPIError as error:
            line.update(ok=False, error=type(error).__name__, message=str(error.orig)[:200])
            if getattr(error.orig, "sqlstate", None) != "40001":
                break
    line["elapsed"] = time.time() - started
    print(json.dumps(line), flush=True)
    time.sleep(0.2)
