"""Nothing readable on disk; tampering, swapping and old copies fail closed; keys are checked."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, exc, text

from deltadb_dialect import tools
from deltadb_dialect.keys import MasterKeySource
from deltadb_dialect.log import ENTRY
from deltadb_dialect.snapshot import LENGTH, PACK_HEADER

SECRETS = ["alice_wonderland", "alice@example.org", "TopSecretProjectName", "hunter2hunter2",
           "secret_table_name", "confidential_column", "key-9f8e7d"]


def _fill(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE TABLE secret_table_name (id TEXT PRIMARY KEY, confidential_column TEXT)"))
        conn.execute(text("INSERT INTO secret_table_name VALUES ('key-9f8e7d', :v)"),
                     {"v": " ".join(SECRETS[:4])})


def _all_bytes_and_names(root: Path) -> tuple[bytes, str]:
    blobs, names = [], []
    for path in root.rglob("*"):
        names.append(path.name)
        if path.is_file():
            blobs.append(path.read_bytes())
    return b"\n".join(blobs), "\n".join(names)


def test_no_plaintext_in_names_or_bytes(make_engine, store_dir: Path) -> None:
    engine = make_engine(f"deltadb:///{store_dir}?checkpoint_mb=0.001")
    _fill(engine)
    for i in range(30):  # enough to force a checkpoint, so snapshots are scanned too
        with engine.begin() as conn:
            conn.execute(text("UPDATE secret_table_name SET confidential_column = :v"),
                         {"v": f"{SECRETS[2]} {i} " * 20})
    engine.dispose()
    assert list(store_dir.glob("snap-*"))
    data, names = _all_bytes_and_names(store_dir)
    for needle in SECRETS:
        assert needle.encode() not in data, needle
        assert needle.encode("utf-16-le") not in data, needle
        assert needle not in names, needle


def test_wrong_key_is_refused_with_a_clear_message(make_engine, store_dir, monkeypatch) -> None:
    _fill(make_engine())
    monkeypatch.setenv("DELTADB_MASTER_KEY", secrets.token_hex(32))
    engine = create_engine(f"deltadb:///{store_dir}")
    with pytest.raises(exc.OperationalError, match="master key does not open the store"):
        engine.connect()


@pytest.mark.parametrize("value, message", [
    ("", "no master key"),
    ("abcd", "must be 64 hex characters"),
    ("zz" * 32, "not hexadecimal"),
])
def test_missing_or_malformed_key_says_how_to_make_one(tmp_path, monkeypatch, value,
                                                       message) -> None:
    monkeypatch.setenv("DELTADB_MASTER_KEY", value)
    engine = create_engine(f"deltadb:///{tmp_path / 'store'}")
    with pytest.raises(exc.OperationalError, match=message) as caught:
        engine.connect()
    assert "keygen" in str(caught.value)
    assert not (tmp_path / "store").exists()


def test_passphrase_store_opens_only_with_its_passphrase(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("DELTADB_MASTER_KEY", raising=False)
    path = tmp_path / "pp"
    engine = create_engine(f"deltadb://:correct horse@/{path}")
    _fill(engine)
    engine.dispose()
    header = (path / "store.hdr").read_text()
    assert "argon2id" in header and "correct horse" not in header
    with create_engine(f"deltadb://:correct horse@/{path}").connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM secret_table_name")).scalar() == 1
    with pytest.raises(exc.OperationalError, match="does not open"):
        create_engine(f"deltadb://:wrong horse@/{path}").connect()


def _reopen_count(store_dir: Path) -> int:
    engine = create_engine(f"deltadb:///{store_dir}")
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM secret_table_name")).scalar()
    finally:
        engine.dispose()


def _drop_replica(store_dir: Path) -> None:
    """Remove the host's replica, as on a new host: the next open rebuilds it from the
    snapshot and the log, so it reads every entity of both."""
    (store_dir / "store.replica").unlink()
    for path in store_dir.glob("replica-*"):
        path.unlink()


def _log_file(store_dir: Path) -> Path:
    return next(store_dir.glob("log-*.dlg"))


def _records_end(data: bytes) -> int:
    """Where the log's records end: zero-filled preallocated space may follow."""
    return sum(len(part) for part in _split_records(data))


@pytest.mark.parametrize("offset_from_end", [1, 17, 40, 100])
def test_flipped_byte_in_log_fails_closed(make_engine, store_dir, offset_from_end) -> None:
    engine = make_engine()
    _fill(engine)
    engine.dispose()
    log = _log_file(store_dir)
    data = bytearray(log.read_bytes())
    data[_records_end(data) - offset_from_end] ^= 0x40  # inside the records, not past them
    log.write_bytes(bytes(data))
    with pytest.raises(exc.DatabaseError, match=r"authenticate|damaged|unknown format"):
        _reopen_count(store_dir)


def test_flipped_byte_in_header_fails_closed(make_engine, store_dir) -> None:
    engine = make_engine()
    _fill(engine)
    engine.dispose()  # the header is read when a store is opened
    header = store_dir / "store.hdr"
    header.write_text(header.read_text().replace('"active_kid": 1', '"active_kid": 2'))
    with pytest.raises(exc.DatabaseError, match="header"):
        _reopen_count(store_dir)


def test_swapped_records_in_log_are_detected(make_engine, store_dir) -> None:
    engine = make_engine()
    _fill(engine)
    for value in ("first", "second"):
        with engine.begin() as conn:
            conn.execute(text("UPDATE secret_table_name SET confidential_column = :v"),
                         {"v": value})
    engine.dispose()
    log = _log_file(store_dir)
    data = log.read_bytes()
    records = _split_records(data)
    head, body = records[0], records[1:]
    body[-1], body[-2] = body[-2], body[-1]
    log.write_bytes(head + b"".join(body) + data[_records_end(data):])
    with pytest.raises(exc.DatabaseError, match=r"expected|authenticate"):
        _reopen_count(store_dir)


def _split_records(data: bytes) -> list[bytes]:
    """The file header, then each record (up to the zeros that may follow the last one)."""
    from deltadb_dialect.log import CRC, FILE_HEADER, RECORD_HEADER

    start = FILE_HEADER.size + CRC.size
    parts = [data[:start]]
    while start < len(data):
        if not any(data[start:start + RECORD_HEADER.size + CRC.size]):
            break  # the end of the log: preallocated zeros
        length = RECORD_HEADER.unpack_from(data, start)[-1]
        end = start + RECORD_HEADER.size + CRC.size + length
        parts.append(data[start:end])
        start = end
    return parts


def _checkpointed_store(make_engine, store_dir: Path) -> Path:
    engine = make_engine()
    _fill(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO secret_table_name VALUES ('second', 'row')"))
    engine.dispose()
    tools.checkpoint(store_dir, MasterKeySource(raw_key=bytes.fromhex(
        os.environ["DELTADB_MASTER_KEY"])))
    return next(store_dir.glob("snap-*.dpk"))


def test_swapped_entities_in_snapshot_are_detected(make_engine, store_dir) -> None:
    snapshot = _checkpointed_store(make_engine, store_dir)
    data = snapshot.read_bytes()
    start = PACK_HEADER.size
    start += LENGTH.size + LENGTH.unpack_from(data, start)[0]
    entries = []
    for _ in range(2):
        length = ENTRY.unpack_from(data, start)[-1]
        entries.append(data[start:start + ENTRY.size + length])
        start += ENTRY.size + length
    swapped = data[:PACK_HEADER.size] + data[PACK_HEADER.size:].replace(
        entries[0] + entries[1], entries[1] + entries[0])
    assert swapped != data
    snapshot.write_bytes(swapped)
    assert _reopen_count(store_dir) == 2  # served from the replica, which never read it
    _drop_replica(store_dir)
    with pytest.raises(exc.DatabaseError, match="does not match the store header"):
        _reopen_count(store_dir)


def test_older_copy_of_snapshot_is_detected(make_engine, store_dir, tmp_path) -> None:
    snapshot = _checkpointed_store(make_engine, store_dir)
    old_copy = tmp_path / "old.dpk"
    shutil.copy(snapshot, old_copy)
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM secret_table_name"))
    engine.dispose()
    source = MasterKeySource(raw_key=bytes.fromhex(os.environ["DELTADB_MASTER_KEY"]))
    tools.checkpoint(store_dir, source)
    current = next(store_dir.glob("snap-*.dpk"))
    shutil.copy(old_copy, current)  # roll the snapshot back to before the DELETE
    assert _reopen_count(store_dir) == 0  # the replica serves the current rows, not the old
    _drop_replica(store_dir)
    with pytest.raises(exc.DatabaseError, match=r"older snapshot|does not match"):
        _reopen_count(store_dir)
    report = tools.verify(store_dir, source)
    assert not report.ok and "snapshot" in " ".join(report.problems)


def test_verify_cli_reports_tampering(make_engine, store_dir, capsys) -> None:
    from deltadb_dialect.cli import main

    _fill(make_engine())
    assert main(["verify", str(store_dir)]) == 0
    assert "OK" in capsys.readouterr().out
    log = _log_file(store_dir)
    data = bytearray(log.read_bytes())
    data[_records_end(data) - 5] ^= 1
    log.write_bytes(bytes(data))
    assert main(["verify", str(store_dir)]) == 2
    assert "PROBLEM" in capsys.readouterr().out


def test_rotate_key_keeps_rows_and_retires_old_key(make_engine, store_dir, tmp_path,
                                                   monkeypatch) -> None:
    from deltadb_dialect.cli import main

    engine = make_engine()
    _fill(engine)
    running = engine.connect()  # a process that stays open across the rotation
    new_key = tmp_path / "new.key"
    assert main(["keygen", "--out", str(new_key)]) == 0
    assert main(["rotate-key", str(store_dir), "--new-key-file", str(new_key)]) == 0
    running.execute(text("INSERT INTO secret_table_name VALUES ('after', 'rotation')"))
    running.commit()
    running.close()
    engine.dispose()
    with pytest.raises(exc.OperationalError, match="does not open"):
        _reopen_count(store_dir)  # the old key, still in the environment
    monkeypatch.delenv("DELTADB_MASTER_KEY")
    with create_engine(f"deltadb:///{store_dir}?key_file={new_key}").connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM secret_table_name")).scalar() == 2


def test_backup_and_restore_round_trip(make_engine, store_dir, tmp_path) -> None:
    _fill(make_engine())
    source = MasterKeySource(raw_key=bytes.fromhex(os.environ["DELTADB_MASTER_KEY"]))
    tools.backup(store_dir, tmp_path / "bk", source)
    tools.restore(tmp_path / "bk", tmp_path / "restored", source)
    assert _reopen_count(tmp_path / "restored") == 1


def test_older_copy_of_the_log_is_detected(make_engine, store_dir, tmp_path) -> None:
    engine = make_engine()
    _fill(engine)
    engine.dispose()
    log = _log_file(store_dir)
    old_copy = tmp_path / "old.dlg"
    shutil.copy(log, old_copy)
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM secret_table_name"))
    engine.dispose()
    shutil.copy(old_copy, log)  # roll the log back to before the DELETE
    with pytest.raises(exc.DatabaseError, match="older copy"):
        _reopen_count(store_dir)


def test_each_row_of_a_commit_is_its_own_ciphertext_bound_to_its_identity(
        make_engine, store_dir, master_key) -> None:
    """Every row entity in a record: distinct random nonce, key tag = the keyed hash of the
    table tag and canonical key, and it opens only with its own associated data."""
    import orjson

    from deltadb_dialect.layout import key_tag, table_tag
    from deltadb_dialect.log import UPSERT, decode_entries, entity_aad
    from deltadb_dialect.replica import canonical_key

    engine = make_engine(f"deltadb:///{store_dir}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
        conn.execute(text("CREATE TABLE pair (a TEXT, b INTEGER, PRIMARY KEY (a, b))"))
    with engine.begin() as conn:
        for i in [1, -7, 2**62, 10]:
            conn.execute(text("INSERT INTO t VALUES (:i, 'same text')"), {"i": i})
        conn.execute(text("INSERT INTO pair VALUES ('x', 1), ('y', 2)"))
    engine.dispose()
    store = tools.open_existing(store_dir, MasterKeySource(raw_key=bytes.fromhex(master_key)))
    try:
        naming = store._require_keyring().naming_key
        log = store._log
        assert log is not None
        record = log.read(log.start, log.base_seq + 1)[-1]
        sealer = store._require_keyring().sealer(record.kid)
        entries = [e for e in decode_entries(record.payload, what="test") if e.op == UPSERT]
        assert len(entries) == 6
        assert len({e.sealed[:12] for e in entries}) == 6  # fresh nonce per row
        assert len({e.sealed for e in entries}) == 6  # equal rows, different ciphertexts
        expected = {}
        for name, keys in {"t": [(1,), (-7,), (2**62,), (10,)],
                           "pair": [("x", 1), ("y", 2)]}.items():
            ttag = table_tag(naming, name)
            for key in keys:
                assert canonical_key(key) == orjson.dumps(list(key))
                expected[key_tag(naming, ttag, canonical_key(key))] = ttag
        for entry in entries:
            assert expected[entry.key_tag] == entry.table_tag
            aad = entity_aad(store._store_id, entry.op, entry.table_tag, entry.key_tag,
                             record.seq)
            assert orjson.loads(sealer.open(entry.sealed, aad, what="row"))
            other = entity_aad(store._store_id, entry.op, entry.table_tag, entry.key_tag,
                               record.seq - 1)
            with pytest.raises(Exception, match="authenticate"):
                sealer.open(entry.sealed, other, what="row")
    finally:
        store.close()
