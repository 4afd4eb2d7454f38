"""What `make run` does before migrating: find or make the master key, and say which store.

    python -m backend.first_run --store DIR --key-file PATH [--given-url URL]

- The key file exists: nothing to make.
- It is missing and the store in DIR already holds data: stop with one sentence. A new key
  could never open that store, and making one would hide the real problem (a misspelt path, a
  key not restored from backup).
- It is missing and there is no store yet: make it. Two first runs at once race safely: the key
  is written to a temporary file and linked into place, which fails if another run got there
  first, and then that run's key (complete, since it was linked only once written) is used.

With `--given-url` (DATABASE_URL set by the caller) no key is made: the store is the URL's.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from deltadb_dialect.keys import generate_master_key_hex


def store_holds_data(store: Path) -> bool:
    return store.is_dir() and any(store.iterdir())


def describe(url: str) -> str:
    """The store a URL points at, without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "deltadb":
        return f"DeltaDB store {Path(parsed.database or '').expanduser().resolve()}"
    return parsed.render_as_string(hide_password=True)


def ensure_key(*, store: Path, key_file: Path) -> bool:
    """Make the key file if it should be made; True when this call made it."""
    if key_file.exists():
        return False
    if store_holds_data(store):
        raise SystemExit(
            f"error: The store at {store} exists but its key file {key_file} does not: find "
            "the master key this store was created with (your backup of the key file, or set "
            "KEY_FILE=PATH if it lives elsewhere); a new key cannot open it."
        )
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=key_file.parent, prefix=".key-")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(generate_master_key_hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(temporary, key_file)  # fails if another first run linked its key first
    except FileExistsError:
        return False
    finally:
        os.unlink(temporary)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.first_run", description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--given-url", help="DATABASE_URL as the caller set it")
    arguments = parser.parse_args(argv)
    if arguments.given_url:
        try:
            print(f"Store: {describe(arguments.given_url)} (from DATABASE_URL)")
        except Exception:  # a malformed URL is explained by alembic, in one line
            print("Store: the one DATABASE_URL names")
        return 0
    store, key_file = arguments.store.resolve(), arguments.key_file.resolve()
    if ensure_key(store=store, key_file=key_file):
        print(f"Made a new master key: {key_file} (mode 0600). Back it up with the store.")
    print(f"Store: DeltaDB store {store}  master key file: {key_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
