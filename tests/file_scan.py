"""Looking for bytes in a store's files without disturbing the processes that have it open.

SQLite coordinates the processes sharing a replica with POSIX advisory locks, and POSIX
drops every lock a process holds on a file as soon as that process closes *any*
descriptor of it. A test that opened and closed the replica's ``-shm`` (or its database
file) itself, say to look for plaintext, silently released its own process's SQLite locks:
the next process to open the store then took the WAL index for unused and reset it
(truncating the ``-shm``) under this process's mapping of it, and this process died of a
SIGBUS at a later commit. The files are therefore read by a child process, whose
descriptors hold none of our locks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_READER = """
import json, sys
from pathlib import Path
top, needles = Path(sys.argv[1]), [bytes.fromhex(n) for n in sys.argv[3:]]
paths = top.rglob("*") if sys.argv[2] == "all" else top.iterdir()
print(json.dumps(sorted(str(p.relative_to(top)) for p in paths if p.is_file()
                        and any(n in p.read_bytes() for n in needles))))
"""


def files_containing(directory: Path, *needles: bytes, recursive: bool = False) -> list[str]:
    """The files in ``directory`` (and below it, if ``recursive``) that hold any of
    ``needles``, as paths relative to it."""
    done = subprocess.run([sys.executable, "-c", _READER, str(directory),
                           "all" if recursive else "top", *(n.hex() for n in needles)],
                          capture_output=True, text=True, timeout=120, check=True)
    return list(json.loads(done.stdout))
