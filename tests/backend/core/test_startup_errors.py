"""Configuration mistakes stop `alembic upgrade head` and `uvicorn backend.main:app` with one
sentence on stderr, a non-zero exit, no traceback, and the store left as it was."""

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai_server import free_port

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
ALEMBIC = [str(BIN / "alembic"), "upgrade", "head"]
KEYGEN = [sys.executable, "-m", "deltadb_dialect", "keygen", "--out"]

pytestmark = pytest.mark.slow


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DELTADB_MASTER_KEY", "LOG_LEVEL")}
    env.update({"DATABASE_URL": database_url, "PYTHONPATH": str(REPO), "LOG_LEVEL": "INFO"})
    env.update(extra)
    return env


def _uvicorn() -> list[str]:
    return [str(BIN / "uvicorn"), "backend.main:app", "--port", str(free_port())]


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _one_sentence(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert '"level": "ERROR"' not in done.stdout and '"level": "CRITICAL"' not in done.stdout
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _fingerprint(store: Path) -> dict[str, str]:
    """The store's files and their digests; SQLite's -wal/-shm beside the replica file come and
    go with the processes that have it open (they hold nothing the replica does not)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.iterdir())
        if p.name != "store.lock" and not p.name.endswith(("-wal", "-shm"))
    }


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "store"
        self.key = root / "master.key"
        self.other_key = root / "other.key"

    def url(self, key_file: Path | str | None = None, **options: str) -> str:
        query = {"key_file": str(key_file or self.key), **options}
        return f"deltadb:///{self.path}?" + "&".join(f"{k}={v}" for k, v in query.items())

    def assert_unchanged(self, before: dict[str, str]) -> None:
        assert _fingerprint(self.path) == before
        verify = [sys.executable, "-m", "deltadb_dialect", "verify", str(self.path)]
        done = _run([*verify, "--key-file", str(self.key)], _env(self.url()))
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    made = Store(tmp_path_factory.mktemp("configured"))
    for key in (made.key, made.other_key):
        subprocess.run([*KEYGEN, str(key)], check=True, capture_output=True)
    done = _run(ALEMBIC, _env(made.url()))
    assert done.returncode == 0, done.stderr
    return made


@pytest.fixture
def unchanged(store: Store) -> Iterator[None]:
    before = _fingerprint(store.path)
    yield
    store.assert_unchanged(before)


COMMANDS = {"alembic": lambda: ALEMBIC, "uvicorn": _uvicorn}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_wrong_master_key(store: Store, unchanged: None, command: str) -> None:
    done = _run(COMMANDS[command](), _env(store.url(store.other_key)))
    _one_sentence(done, "does not open the store", "the key it was created with")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_key_file_for_an_existing_store(
    store: Store, unchanged: None, command: str
) -> None:
    misspelt = store.root / "master.kye"
    sentence = _one_sentence(_run(COMMANDS[command](), _env(store.url(misspelt))), "find the")
    assert "keygen" not in sentence  # a new key cannot open this store
    assert not misspelt.exists()


def test_a_missing_key_file_for_a_new_store(tmp_path: Path) -> None:
    url = f"deltadb:///{tmp_path}/new?key_file={tmp_path}/none.key"
    _one_sentence(_run(ALEMBIC, _env(url)), "does not exist", "keygen")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_malformed_key(store: Store, unchanged: None, command: str) -> None:
    url = f"deltadb:///{store.path}"
    done = _run(COMMANDS[command](), _env(url, DELTADB_MASTER_KEY="not-a-key"))
    _one_sentence(done, "DELTADB_MASTER_KEY", "64 hexadecimal", "backup")


def test_a_store_held_by_a_process_that_does_not_let_go(store: Store, unchanged: None) -> None:
    holder_code = (
        "import sys, time, deltadb_dialect\n"
        "from sqlalchemy import create_engine, text\n"
        "connection = create_engine(sys.argv[1]).connect()\n"
        "connection.execute(text('UPDATE alembic_version SET version_num = version_num'))\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, store.url()],
        cwd=REPO,
        env=_env(store.url()),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = _run(ALEMBIC, _env(store.url(timeout="1")))
        _one_sentence(done, "held by another process", "stop the other")
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_malformed_database_url(command: str) -> None:
    _one_sentence(_run(COMMANDS[command](), _env("not a url")), "DATABASE_URL is not")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_driver(command: str) -> None:
    done = _run(COMMANDS[command](), _env("postgresql+pg8000://openchat@127.0.0.1/openchat"))
    _one_sentence(done, "pg8000", "not installed")


def test_the_server_on_a_database_not_at_head(tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    subprocess.run([*KEYGEN, str(key)], check=True, capture_output=True)
    done = _run(_uvicorn(), _env(f"deltadb:///{tmp_path}/empty?key_file={key}"))
    _one_sentence(done, "alembic upgrade head")


def test_a_database_migrated_by_a_newer_version(store: Store, tmp_path: Path) -> None:
    newer = Store(tmp_path)
    shutil.copytree(store.path, newer.path)
    shutil.copy(store.key, newer.key)
    code = (
        "import sys, deltadb_dialect\n"
        "from sqlalchemy import create_engine, text\n"
        "with create_engine(sys.argv[1]).begin() as c:\n"
        "    c.execute(text(\"UPDATE alembic_version SET version_num = '9999_future'\"))\n"
    )
    subprocess.run([sys.executable, "-c", code, newer.url()], check=True, cwd=REPO)
    _one_sentence(_run(ALEMBIC, _env(newer.url())), "newer", "restore a backup")


def test_invalid_settings(store: Store) -> None:
    done = _run(ALEMBIC, _env(store.url(), LOG_LEVEL="chatty"))
    _one_sentence(done, "LOG_LEVEL")


def test_log_level_debug_shows_the_traceback_too(store: Store, unchanged: None) -> None:
    done = _run(ALEMBIC, {**_env(store.url(store.other_key)), "LOG_LEVEL": "debug"})
    assert done.returncode != 0 and "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: The master key")


def test_log_level_in_any_case_starts_the_server(store: Store) -> None:
    port = free_port()
    command = [str(BIN / "uvicorn"), "backend.main:app", "--port", str(port)]
    server = subprocess.Popen(
        command, cwd=REPO, env=_env(store.url(), LOG_LEVEL="info"), stderr=subprocess.PIPE
    )
    try:
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=20)


def _on_a_read_only_mount(directory: Path, command: list[str]) -> list[str]:
    """`command` run in its own mount namespace where `directory` is a read-only bind mount,
    as a store on a volume mounted read-only is: even root cannot write there, and the mount
    vanishes with the process, so nothing is left to clean up."""
    remount = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        remount,
        str(directory),
        *command,
    ]


def _can_mount_read_only(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(
        _on_a_read_only_mount(probe, ["sh", "-c", f"! touch {probe / 'written'}"]),
        capture_output=True,
        timeout=30,
    )
    return done.returncode == 0


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_store_directory(store: Store, command: str, tmp_path: Path) -> None:
    if not _can_mount_read_only(tmp_path):
        pytest.skip("needs a private mount namespace (unshare --mount) to make a read-only mount")
    before = _fingerprint(store.path)
    done = _run(_on_a_read_only_mount(store.path, COMMANDS[command]()), _env(store.url()))
    line = _one_sentence(done, str(store.path))
    assert "read-only" in line.lower() or "not writable" in line, line
    store.assert_unchanged(before)


def test_an_unwritable_store_directory_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root (where the suite runs in CI) a chmod does not stop writes, so the real command
    # cannot show this case; the sentence is checked on the error the store raises.
    from backend.core import startup_errors
    from deltadb_dialect.errors import StorageFullError

    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.setattr(startup_errors.os, "access", lambda *_: False)
    error = StorageFullError("cannot write store.lock: Read-only file system")
    sentence = startup_errors.explain(error, database_url=f"deltadb:///{store}")
    assert (
        sentence is not None and "not writable by this user" in sentence and str(store) in sentence
    )
