"""`make run`'s first-run step: the master key is made only for a new store, once."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.first_run import describe, ensure_key

REPO = Path(__file__).resolve().parents[2]
FIRST_RUN = [sys.executable, "-m", "backend.first_run"]


def _store_with_data(tmp_path: Path) -> Path:
    store = tmp_path / "data" / "openchat"
    store.mkdir(parents=True)
    (store / "store.hdr").write_bytes(b"existing")
    return store


def test_make_run_refuses_a_new_key_beside_an_existing_store(tmp_path: Path) -> None:
    store = _store_with_data(tmp_path)
    misspelt = tmp_path / "secrets" / "deltadb-master.kye"
    command = ["make", "-s", "run", f"DATA_DIR={store.parent}", f"KEY_FILE={misspelt}"]
    # The suite's own DATABASE_URL would be "a given URL"; make run's default is the case here.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DELTADB_MASTER_KEY")}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    sentence = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(sentence) == 1 and "find the master key" in sentence[0], done.stderr
    assert not misspelt.exists() and (store / "store.hdr").read_bytes() == b"existing"


def test_a_first_run_makes_a_private_key(tmp_path: Path) -> None:
    key = tmp_path / "secrets" / "master.key"
    assert ensure_key(store=tmp_path / "data" / "openchat", key_file=key) is True
    assert len(key.read_text().strip()) == 64 and key.stat().st_mode & 0o777 == 0o600
    assert ensure_key(store=tmp_path / "data" / "openchat", key_file=key) is False


def test_two_first_runs_at_once_share_one_key(tmp_path: Path) -> None:
    key = tmp_path / "secrets" / "master.key"
    argv = [*FIRST_RUN, "--store", str(tmp_path / "data" / "openchat"), "--key-file", str(key)]
    runs = [
        subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    results = [(run.wait(timeout=60), *run.communicate()) for run in runs]
    assert all(code == 0 and not err for code, _, err in results), results
    assert sum("Made a new master key" in out for _, out, _ in results) == 1
    assert len(key.read_text().strip()) == 64
    assert [p.name for p in key.parent.iterdir()] == ["master.key"]  # no temporary left


@pytest.mark.parametrize(
    "url,shown",
    [
        ("postgresql+psycopg://chat:s3cret@db.internal/openchat", "db.internal/openchat"),
        ("deltadb:////srv/openchat/store?key_file=/etc/k", "DeltaDB store /srv/openchat/store"),
    ],
)
def test_the_store_a_given_url_uses_is_printed_without_its_password(url: str, shown: str) -> None:
    assert shown in describe(url) and "s3cret" not in describe(url)
