"""The image's entrypoint as a process on the host: its refusals are one line, no traceback."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from docker_helpers import REPO

ENTRYPOINT = REPO / "docker" / "entrypoint.py"


def run_entrypoint(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ENVIRONMENT"}}
    return subprocess.run([sys.executable, str(ENTRYPOINT)], capture_output=True, text=True,
                          env={**clean, "PYTHONPATH": str(REPO), **env}, cwd=tmp_path,
                          timeout=60)


def assert_one_line_refusal(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert text in done.stderr


def test_a_setting_and_its_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from the file\n")
    done = run_entrypoint(tmp_path, SECRET_KEY="inline", SECRET_KEY_FILE=str(secret))
    assert_one_line_refusal(done, "SECRET_KEY and SECRET_KEY_FILE are both set")


def test_a_missing_secret_file_is_named(tmp_path: Path) -> None:
    done = run_entrypoint(tmp_path, SECRET_KEY_FILE=str(tmp_path / "absent"))
    assert_one_line_refusal(done, f"the file {tmp_path / 'absent'} does not exist")


def test_a_configuration_mistake_is_one_line(tmp_path: Path) -> None:
    done = run_entrypoint(tmp_path, ENVIRONMENT="production",
                          DATABASE_URL=f"sqlite:///{tmp_path}/app.db")
    assert_one_line_refusal(done, "The configuration is invalid")
    assert "SECRET_KEY" in done.stderr


def test_the_mount_holding_a_path_is_the_longest_prefix() -> None:
    spec = importlib.util.spec_from_file_location("entrypoint", ENTRYPOINT)
    assert spec is not None and spec.loader is not None
    entrypoint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entrypoint)
    mountinfo = "\n".join([
        "1 0 0:1 / / rw - overlay overlay rw",
        "2 1 0:2 / /data rw - ext4 /dev/vda rw",
        "3 1 0:3 / /data2 rw - ext4 /dev/vda rw",
        "4 1 0:4 / /run/secrets/deltadb_master_key ro - ext4 /dev/vda rw",
    ])
    assert entrypoint.mount_point(Path("/data/openchat"), mountinfo) == "/data"
    assert entrypoint.mount_point(Path("/data"), mountinfo) == "/data"
    assert entrypoint.mount_point(Path("/database/openchat"), mountinfo) == "/"
    assert entrypoint.mount_point(Path("/srv/openchat"), mountinfo) == "/"
