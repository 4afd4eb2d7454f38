"""Configuration mistakes found at start-up, told in one sentence that says what to do next.

The server, `alembic` and the CLI run their start-up under `exit_on_configuration_error`: a
failure that configuration caused (a wrong or missing master key, a store another process will
not let go of, a malformed DATABASE_URL, a missing driver, a database not at head...) prints one
line and exits 1. Anything else propagates with its traceback, as does everything with
LOG_LEVEL=DEBUG. The advice is worked out from the configuration itself (the URL, the key file,
the store directory), not from the wording of the store's messages.
"""

import os
import sqlite3
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from backend.mcp.config import McpConfigError
from deltadb_dialect import errors as store_errors

MASTER_KEY_ENV = "DELTADB_MASTER_KEY"
KEYGEN = "python -m deltadb_dialect keygen --out"


class ConfigurationError(RuntimeError):
    """Start-up stopped by configuration; the message is the one sentence to show."""


# The sentence already shown in this process, so the server's own report of the same failed
# start-up (a traceback) can be left out (see backend.core.logging).
reported: str | None = None


def debugging() -> bool:
    return os.environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"


def report(sentence: str, error: BaseException | None = None) -> None:
    global reported
    if error is not None and debugging():
        traceback.print_exception(error, file=sys.stderr)
    print(f"error: {sentence}", file=sys.stderr, flush=True)
    reported = sentence


@contextmanager
def exit_on_configuration_error(*, database_url: str | None) -> Iterator[None]:
    try:
        yield
    except Exception as error:
        sentence = explain(error, database_url=database_url)
        if sentence is None:
            raise
        report(sentence, error)
        raise SystemExit(1) from None


def explain(error: BaseException, *, database_url: str | None) -> str | None:
    """The sentence for a failure caused by configuration, or None for any other failure."""
    if isinstance(error, ConfigurationError | McpConfigError):
        return str(error)
    if isinstance(error, ValidationError):
        return _settings_problem(error)
    chain = list(_causes(error))
    if database_url is None:
        return None
    if any(isinstance(e, ArgumentError) and "parse" in str(e) for e in chain):
        return (
            "DATABASE_URL is not a database URL: use e.g. deltadb:///./data/openchat?key_file="
            "PATH, sqlite:///./openchat.db or postgresql+psycopg://USER:PASSWORD@HOST/DBNAME."
        )
    url = make_url(database_url)
    for e in chain:
        if sentence := _explain_one(e, url=url):
            return sentence
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__, getattr(e, "orig", None)]


def _explain_one(error: BaseException, *, url: URL) -> str | None:
    if type(error).__name__ in ("CommandError", "ResolutionError") and "locate revision" in str(
        error
    ):
        return (
            "The database is at a revision this version of Open Chat does not know (a newer "
            "version migrated it): run that version, or restore a backup made before the upgrade."
        )
    if isinstance(error, NoSuchModuleError):
        return (
            f'DATABASE_URL names the database kind "{url.drivername}", which is not installed or '
            "not known: use deltadb://, sqlite:// or postgresql+psycopg://."
        )
    if isinstance(error, ModuleNotFoundError) and error.name:
        return (
            f"The driver {error.name!r} for DATABASE_URL ({url.drivername}://) is not installed: "
            f"`pip install {error.name}`, or use postgresql+psycopg://, whose driver "
            "requirements.txt installs."
        )
    if url.get_backend_name() == "deltadb":
        return _store_problem(error, url=url)
    if url.get_backend_name() == "sqlite" and isinstance(error, sqlite3.OperationalError):
        return (
            f"SQLite cannot open {url.database} ({error}): make sure its directory exists and "
            "is writable by this user, or change DATABASE_URL."
        )
    if url.get_backend_name() == "postgresql" and type(error).__module__.startswith("psycopg"):
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        return (
            f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432} cannot be used "
            f"({first_line}): check that it runs and the host, port, user, password and database "
            "name in DATABASE_URL."
        )
    return None


def _store_problem(error: BaseException, *, url: URL) -> str | None:
    store = Path(url.database or "").expanduser().resolve()
    exists = store.is_dir() and any(store.iterdir())
    if isinstance(error, store_errors.KeyMissingError | store_errors.WrongKeyError):
        return _key_problem(error, url=url, store=store, exists=exists)
    if url.query.get("storage") and isinstance(error, store_errors.StoreError) and (
        "PostgreSQL" in str(error)
    ):
        # The store's own sentence: which server, what is wrong, what to do (no password).
        return f"The store's database cannot be used: {error}."
    if isinstance(error, store_errors.LockTimeoutError):
        return (
            f"The store at {store} is held by another process that did not let go in time: "
            "stop the other server, migration or tool using it, then start again "
            "(or raise ?timeout= in DATABASE_URL for long backups)."
        )
    if isinstance(error, store_errors.StorageFullError | PermissionError):
        where = store if store.exists() else store.parent
        if _on_a_read_only_file_system(where):
            return (
                f"The store directory {where} is on a read-only file system: mount it "
                "read-write, or point DATABASE_URL at a writable directory."
            )
        if not os.access(where, os.W_OK):
            return (
                f"The store directory {where} is not writable by this user: make it writable "
                "(chown or chmod) or point DATABASE_URL at a writable directory."
            )
        return f"The disk holding {store} refused a write (full or over quota): free some space."
    return None


def _on_a_read_only_file_system(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _key_problem(error: BaseException, *, url: URL, store: Path, exists: bool) -> str:
    key_file = url.query.get("key_file")
    origin = f"the key file {key_file}" if key_file else MASTER_KEY_ENV
    if url.password:
        origin = "the passphrase in DATABASE_URL"
    find_it = (
        f"the store at {store} exists, so find the master key it was created with (your backup "
        "of the key file, or a misspelt path); a new key cannot open it."
    )
    if isinstance(error, store_errors.WrongKeyError):
        return (
            f"The master key from {origin} does not open the store at {store}: use the key it "
            f"was created with (check key_file in DATABASE_URL and {MASTER_KEY_ENV})."
        )
    if isinstance(key_file, str) and not url.password:
        path = Path(key_file).expanduser()
        if not path.exists():
            make_one = f"create one with `{KEYGEN} {path}`."
            return f"The key file {path} does not exist: " + (find_it if exists else make_one)
        if not os.access(path, os.R_OK):
            return (
                f"The key file {path} cannot be read by this user: fix its owner or mode "
                "(0600, owned by the user running Open Chat)."
            )
    if key_file or os.environ.get(MASTER_KEY_ENV):
        fix = "restore it from your backup" if exists else f"make a new one with `{KEYGEN} PATH`"
        return f"The master key in {origin} is not 64 hexadecimal characters: {fix}."
    return f"No master key was given for the store at {store}: " + (
        find_it
        if exists
        else f"create one with `{KEYGEN} PATH` and add ?key_file=PATH to DATABASE_URL."
    )


def _settings_problem(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "settings"
        problems.append(f"{field}: {item['msg']}")
    return (
        "The configuration is invalid ("
        + "; ".join(problems)
        + "): fix it in the environment or .env."
    )
