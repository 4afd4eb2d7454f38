"""The store's tools on a PostgreSQL-backed store, and moving stores between storages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import create_engine, text

from deltadb_dialect import keys


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deltadb_dialect", *argv], capture_output=True,
                          text=True, timeout=120, env=env or os.environ)


def _fill(url: str, rows: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, v TEXT)"))
    for i in range(rows):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes (v) VALUES (:v)"), {"v": f"note {i}"})
    engine.dispose()


def _rows(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = list(conn.execute(text("SELECT v FROM notes ORDER BY id")).scalars())
    engine.dispose()
    return found


def test_a_store_moves_from_a_directory_to_postgresql_and_back(master_key, tmp_path,
                                                               pg_url) -> None:
    directory = tmp_path / "store"
    _fill(f"deltadb:///{directory}?checkpoint_mb=0.01", 120)  # a snapshot and a log
    on_pg = f"{tmp_path / 'replica'}?storage={pg_url}"
    done = _cli("migrate-storage", str(directory), on_pg)
    assert done.returncode == 0, done.stderr
    assert "120 rows" in done.stdout and "store-test-password" not in done.stdout
    expected = [f"note {i}" for i in range(120)]
    assert _rows(f"deltadb:///{tmp_path / 'replica'}?storage={pg_url}") == expected
    _fill(f"deltadb:///{tmp_path / 'replica'}?storage={pg_url}", 5)  # it goes on there
    back = tmp_path / "back"
    done = _cli("migrate-storage", on_pg, str(back))
    assert done.returncode == 0, done.stderr
    assert _rows(f"deltadb:///{back}") == expected + [f"note {i}" for i in range(5)]
    again = _cli("migrate-storage", str(directory), on_pg)  # never over an existing store
    assert again.returncode == 1 and "already holds a store" in again.stderr


def test_verify_info_backup_and_rotate_key_on_postgresql(master_key, tmp_path, pg_url) -> None:
    replica = tmp_path / "replica"
    location = f"{replica}?storage={pg_url}"
    _fill(f"deltadb:///{location}", 30)
    verified = _cli("verify", location)
    assert verified.returncode == 0 and verified.stdout.startswith("OK: ")
    described = json.loads(_cli("info", location).stdout)
    assert described["sequence"] == 31 and described["tables"][0]["rows"] == 30
    backup = _cli("backup", location, str(tmp_path / "copy"))
    assert backup.returncode == 0, backup.stderr
    assert _rows(f"deltadb:///{tmp_path / 'copy'}") == [f"note {i}" for i in range(30)]
    new_key = tmp_path / "new.key"
    keys.write_key_file(new_key, keys.generate_master_key_hex())
    rotated = _cli("rotate-key", location, "--new-key-file", str(new_key))
    assert rotated.returncode == 0, rotated.stderr
    assert _cli("info", location).returncode == 1  # the old key no longer opens it
    with_new = _cli("info", location, "--key-file", str(new_key),
                    env={k: v for k, v in os.environ.items() if k != "DELTADB_MASTER_KEY"})
    assert with_new.returncode == 0, with_new.stderr
    assert _rows(f"deltadb:///{tmp_path / 'other'}?storage={pg_url}&key_file={new_key}") == [
        f"note {i}" for i in range(30)]


def test_a_damaged_record_in_postgresql_is_reported_by_verify(master_key, tmp_path,
                                                              pg_url) -> None:
    import psycopg

    location = f"{tmp_path / 'replica'}?storage={pg_url}"
    _fill(f"deltadb:///{location}", 5)
    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute("UPDATE deltadb_records SET data = overlay(data placing '\\xff'::bytea "
                   "from 60 for 1) WHERE seq = 3")
    report = _cli("verify", f"{tmp_path / 'fresh'}?storage={pg_url}")
    assert report.returncode == 2, report.stdout + report.stderr
    assert "PROBLEM: " in report.stdout and "log record 3" in report.stdout


def test_a_log_moves_to_postgresql_in_parts_smaller_than_its_records(master_key, tmp_path,
                                                                      pg_url,
                                                                      monkeypatch) -> None:
    from deltadb_dialect import pg_storage
    from deltadb_dialect.migrate import migrate_storage

    directory = tmp_path / "store"
    _fill(f"deltadb:///{directory}", 40)  # no checkpoint: every row is in the log
    monkeypatch.setattr(pg_storage, "IMPORT_PART", 97)  # records cut at every read
    on_pg = f"{tmp_path / 'replica'}?storage={pg_url}"
    done = migrate_storage(directory, on_pg, keys.resolve_source(passphrase=None,
                                                                 key_file=None))
    assert done["rows"] == 40
    assert _rows(f"deltadb:///{on_pg}") == [f"note {i}" for i in range(40)]
