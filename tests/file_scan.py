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
needle = bytes.fromhex(sys.argv[2])
print(json.dumps(sorted(p.name for p in Path(sys.argv[1]).iterdir()
                        if p.is_file() and needle in p.read_bytes())))
"""


def files_containing(directory: Path, needle: bytes) -> list[str]:
    """The names of the files directly in ``directory`` that hold ``needle``."""
    done = subprocess.run([sys.executable, "-c", _READER, str(directory), needle.hex()],
                          capture_output=True, text=True, timeout=120, check=True)
    return list(json.loads(done.stdout))
