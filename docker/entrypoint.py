"""The image's entrypoint: secrets from files, the store's master key, migrations, the server.

`openchat` (the default command) checks the configuration, applies the migrations and starts
uvicorn. Any other command runs as given, with the same secrets and key, for example
`deltadb verify /data/openchat`, `deltadb serve --store /data/openchat --host 0.0.0.0`,
`deltadb keygen` or `python -m backend.cli archive-idle --days 90`.

Every refusal is one line on stderr saying what to do, and exit status 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[1]
DEFAULT_KEY_FILE = "/run/secrets/deltadb_master_key"
DEFAULT_STORE = "/data/openchat"
# Settings that may come from a file (`NAME_FILE=/run/secrets/...`), and the Docker secret
# read when neither NAME nor NAME_FILE is set.
SECRET_SETTINGS = {
    "SECRET_KEY": "/run/secrets/openchat_secret_key",
    "ADMIN_PASSWORD": None,
    "OPENAI_API_KEY": None,
    "DELTADB_ADMIN_KEY": None,
    # The password of a PostgreSQL-backed store (libpq reads PGPASSWORD itself).
    "PGPASSWORD": "/run/secrets/postgres_password",
}
KEYGEN_HINT = (
    "make one with `docker run --rm IMAGE deltadb keygen > deltadb_master_key` and mount it "
    f"as the Docker secret deltadb_master_key (it appears at {DEFAULT_KEY_FILE})"
)

Environ = MutableMapping[str, str]


class AlreadySaid(Exception):
    """A refusal whose one line the service itself has already printed."""


class Refusal(Exception):
    """A configuration the container must not start with; the message says what to do."""


def load_secret_files(environ: Environ) -> None:
    for name, default_file in SECRET_SETTINGS.items():
        file = environ.get(f"{name}_FILE")
        if file and environ.get(name):
            raise Refusal(f"{name} and {name}_FILE are both set; keep one of them.")
        if not file and not environ.get(name) and default_file and Path(default_file).exists():
            file = default_file
        if file:
            environ[name] = read_secret(Path(file), setting=name)


def read_secret(path: Path, *, setting: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise Refusal(f"{setting}: the file {path} does not exist; mount it there.") from None
    except PermissionError:
        raise Refusal(unreadable(path)) from None
    if not value:
        raise Refusal(f"{setting}: the file {path} is empty.")
    return value


def unreadable(path: Path) -> str:
    uid = os.getuid()
    return (
        f"{path} cannot be read by this container's user (uid {uid}); on the host, "
        f"`chown {uid} FILE` and keep it mode 0400 (a Docker secret keeps the host's owner)."
    )


def database_url(environ: Environ) -> str:
    """DATABASE_URL as given, else the store on the /data volume under the mounted key."""
    if environ.get("DATABASE_URL"):
        return environ["DATABASE_URL"]
    key_file = environ.get("DELTADB_MASTER_KEY_FILE", DEFAULT_KEY_FILE)
    return f"deltadb:///{DEFAULT_STORE}?key_file={key_file}"


def prepare_master_key(environ: Environ, url: str, *, required: bool) -> None:
    """Make sure a deltadb store has its key; create one only when asked, and only for no store.

    Other commands than the server (`deltadb keygen`, say) may run without a key: then
    `required` is false and a missing key is left for the tool itself to report.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "deltadb" or parsed.password:
        return
    key_file = parsed.query.get("key_file")
    if isinstance(key_file, tuple):
        key_file = key_file[-1]
    if key_file is None:
        if required and not environ.get("DELTADB_MASTER_KEY"):
            raise Refusal(f"DATABASE_URL names no key_file and DELTADB_MASTER_KEY is unset; "
                          f"{KEYGEN_HINT}.")
        return
    path = Path(key_file)
    if not path.exists() and required:
        if environ.get("OPENCHAT_GENERATE_KEY") != "1":
            raise Refusal(f"No master key at {path}: {KEYGEN_HINT}. For a new, empty store "
                          "only, OPENCHAT_GENERATE_KEY=1 writes one to DELTADB_MASTER_KEY_FILE "
                          "(on a writable volume of its own).")
        generate_key(path, store=Path(parsed.database or DEFAULT_STORE))
    if path.exists() and not os.access(path, os.R_OK):
        raise Refusal(unreadable(path))
    if not required and path.exists() and "DELTADB_MASTER_KEY" not in environ:
        # The command-line tools read the key from the environment (the server reads the file
        # named in its URL); it stays in this process tree, never in the image.
        environ["DELTADB_MASTER_KEY"] = read_secret(path, setting="DELTADB_MASTER_KEY_FILE")


def generate_key(path: Path, *, store: Path) -> None:
    from deltadb_dialect import keys

    if store.exists() and any(store.iterdir()):
        raise Refusal(f"OPENCHAT_GENERATE_KEY=1 refused: {store} already holds a store and "
                      f"{path} is missing; mount the master key that store was made with.")
    try:
        keys.write_key_file(path, keys.generate_master_key_hex())
    except OSError as exc:
        raise Refusal(f"cannot write a new master key to {path} ({exc.strerror}); point "
                      "DELTADB_MASTER_KEY_FILE at a writable volume of its own.") from None
    print(f"Generated a new DeltaDB master key at {path} (mode 0600) for the new store at "
          f"{store}. Back it up now: without it the store cannot be read.", file=sys.stderr)


def mount_point(path: Path, mountinfo: str) -> str:
    """The mount point holding `path`, from /proc/self/mountinfo (field 5 of each line)."""
    points = [line.split()[4] for line in mountinfo.splitlines() if len(line.split()) > 4]
    holding = [p for p in points if path == Path(p) or Path(p) in path.parents]
    return max(holding, key=len, default="/")


def check_store_volume(url: str) -> None:
    """The store must live on a volume: in the container's own layer it dies with it."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "deltadb" or not parsed.database:
        return
    store = Path(parsed.database)
    if mount_point(store, Path("/proc/self/mountinfo").read_text()) == "/":
        raise Refusal(f"The store {store} is not on a volume and would be lost with the "
                      f"container; mount one there, e.g. `-v openchat-data:{store.parent}`.")
    parent = store if store.exists() else store.parent
    if not os.access(parent, os.W_OK):
        raise Refusal(f"{parent} is not writable by this container's user (uid {os.getuid()}); "
                      f"use a named volume (it takes the image's owner) or `chown {os.getuid()}` "
                      "the mounted directory.")


def check_settings() -> None:
    """Load the service's settings here, so a mistake stops the start before migrations.

    The settings module says what is wrong itself, in one line (the service's own start-up
    errors), and exits; that exit becomes the entrypoint's refusal, without a second line.
    """
    try:
        import backend.core.config  # noqa: F401 -- loading it checks every setting
    except SystemExit:
        raise AlreadySaid() from None


def migrate(environ: Environ) -> None:
    """`alembic upgrade head`. On deltadb it runs in one store transaction, which the store
    serializes across processes and containers: replicas starting together migrate once."""
    command = [sys.executable, "-m", "alembic", "-c", str(APP_DIR / "alembic.ini"),
               "upgrade", "head"]
    done = subprocess.run(command, cwd=APP_DIR, env=dict(environ), capture_output=True,
                          text=True)
    if done.returncode == 0:
        sys.stderr.write(done.stdout + done.stderr)  # which revisions ran, if any
        return
    if environ.get("OPENCHAT_DEBUG") == "1":
        sys.stderr.write(done.stderr)
    # SQLAlchemy ends its errors with a pointer to its docs; the reason is the line before.
    lines = [line for line in done.stderr.splitlines()
             if line.strip() and not line.startswith("(Background on this error")]
    reason = lines[-1] if lines else f"exit status {done.returncode}"
    raise Refusal(f"Migrations failed: {reason} (OPENCHAT_DEBUG=1 shows all).")


def serve_command(environ: Environ) -> list[str]:
    host, port = environ.get("HOST", "0.0.0.0"), environ.get("PORT", "8000")
    # The connection limits of `make run` (docs/SECURITY.md, "HTTP hardening"), and
    # --proxy-headers trusting FORWARDED_ALLOW_IPS (uvicorn reads it; default 127.0.0.1).
    limits = ["--http", "backend.http_protocol:TimedH11Protocol",
              "--limit-concurrency", environ.get("LIMIT_CONCURRENCY", "512"),
              "--timeout-keep-alive", "5", "--h11-max-incomplete-event-size", "16384"]
    return ["uvicorn", "backend.main:app", "--host", host, "--port", port, "--proxy-headers",
            *limits]


def main(argv: list[str]) -> int:
    environ = os.environ
    command = argv or ["openchat"]
    try:
        load_secret_files(environ)
        url = database_url(environ)
        environ["DATABASE_URL"] = url
        serving = command[0] == "openchat"
        if serving:
            check_store_volume(url)
        prepare_master_key(environ, url, required=serving)
        if serving:
            check_settings()
            migrate(environ)
            command = serve_command(environ)
    except Refusal as refusal:
        print(f"openchat: {refusal}", file=sys.stderr)
        return 2
    except AlreadySaid:
        return 2
    os.chdir(APP_DIR)
    try:
        os.execvp(command[0], command)
    except FileNotFoundError:
        print(f"openchat: no such command in this image: {command[0]}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
