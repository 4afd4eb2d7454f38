"""Every committed row change reaches the store, and nothing else does.

Random transactions over tables of every shape the capture distinguishes (integer,
text and composite primary keys, no primary key, WITHOUT ROWID, generated columns,
ON DELETE CASCADE, INSERT OR REPLACE over a unique column), with key changes,
savepoints rolled back, whole transactions rolled back and failed statements. After
every few transactions the store is closed and reopened from disk, and each table must
hold exactly what the live database held before closing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, exc

from deltadb_dialect import dbapi, store
from deltadb_dialect.store import SEAL_AHEAD_ROWS

SCHEMA = [
    "CREATE TABLE ipk (id INTEGER PRIMARY KEY, u TEXT UNIQUE, n INT)",
    "CREATE TABLE textpk (k TEXT PRIMARY KEY, n INT)",
    "CREATE TABLE composite (a INT, b TEXT, n INT, PRIMARY KEY (a, b))",
    "CREATE TABLE nopk (x INT, y TEXT)",
    "CREATE TABLE wr (k TEXT PRIMARY KEY, n INT) WITHOUT ROWID",
    "CREATE TABLE gen (id INTEGER PRIMARY KEY, a INT, twice INT GENERATED ALWAYS AS (a * 2), "
    "k TEXT UNIQUE)",
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT)",
    "CREATE TABLE child (id INTEGER PRIMARY KEY, "
    "parent_id INT REFERENCES parent(id) ON DELETE CASCADE, n INT)",
]
# what each table holds, in a stable order (tables without a key are compared with rowids)
CONTENT = {
    "ipk": "SELECT id, u, n FROM ipk ORDER BY id",
    "textpk": "SELECT k, n FROM textpk ORDER BY k",
    "composite": "SELECT a, b, n FROM composite ORDER BY a, b",
    "nopk": "SELECT _rowid_, x, y FROM nopk ORDER BY _rowid_",
    "wr": "SELECT k, n FROM wr ORDER BY k",
    "gen": "SELECT id, a, twice, k FROM gen ORDER BY id",
    "parent": "SELECT id, name FROM parent ORDER BY id",
    "child": "SELECT id, parent_id, n FROM child ORDER BY id",
}


def small_key(rng: random.Random) -> int:
    return rng.randint(1, 12)  # few keys: many collisions, key moves and reuses


def word(rng: random.Random) -> str:
    return rng.choice("abcdefgh") + str(rng.randint(1, 6))


def random_statement(rng: random.Random) -> tuple[str, tuple]:
    """One random write, valid or not (a failing one must leave no trace)."""
    k, k2, n, w = small_key(rng), small_key(rng), rng.randint(-5, 50), word(rng)
    return rng.choice([
        ("INSERT INTO ipk (id, u, n) VALUES (?, ?, ?)", (k, w, n)),
        ("INSERT OR REPLACE INTO ipk (id, u, n) VALUES (?, ?, ?)", (k, w, n)),
        ("UPDATE ipk SET id = ? WHERE id = ?", (k2, k)),
        ("UPDATE ipk SET n = n + 1 WHERE id % 3 = ?", (k % 3,)),
        ("DELETE FROM ipk WHERE id = ?", (k,)),
        ("INSERT OR REPLACE INTO textpk VALUES (?, ?)", (w, n)),
        ("UPDATE textpk SET k = ? WHERE k = ?", (word(rng), w)),
        ("DELETE FROM textpk WHERE n < ?", (n // 4,)),
        ("INSERT OR IGNORE INTO composite VALUES (?, ?, ?)", (k, w, n)),
        ("UPDATE composite SET a = ?, b = ? WHERE a = ?", (k2, word(rng), k)),
        ("DELETE FROM composite WHERE a = ?", (k,)),
        ("INSERT INTO nopk VALUES (?, ?)", (n, w)),
        ("UPDATE nopk SET y = ? WHERE x < ?", (w, n)),
        ("DELETE FROM nopk WHERE x > ?", (n,)),
        ("INSERT OR REPLACE INTO wr VALUES (?, ?)", (w, n)),
        ("UPDATE wr SET k = ? WHERE k = ?", (word(rng), w)),
        ("DELETE FROM wr WHERE k = ?", (w,)),
        ("INSERT OR REPLACE INTO gen (id, a, k) VALUES (?, ?, ?)", (k, n, w)),
        ("UPDATE gen SET a = a + 1, id = ? WHERE id = ?", (k2, k)),
        ("DELETE FROM gen WHERE id = ?", (k,)),
        ("INSERT OR REPLACE INTO parent VALUES (?, ?)", (k, w)),
        ("INSERT INTO child (parent_id, n) VALUES (?, ?)", (k, n)),
        ("DELETE FROM parent WHERE id = ?", (k,)),
        ("DELETE FROM child WHERE n > ?", (n,)),
    ])


def run_statement(conn: Connection, rng: random.Random) -> None:
    sql, parameters = random_statement(rng)
    try:
        with conn.begin_nested():  # a failed statement rolls back to here, not the whole
            conn.exec_driver_sql(sql, parameters)
    except exc.IntegrityError:
        pass


def random_transaction(engine: Engine, rng: random.Random) -> None:
    with engine.connect() as conn, conn.begin() as transaction:
        for _ in range(rng.randint(1, 8)):
            run_statement(conn, rng)
        if rng.random() < 0.3:  # changes undone by ROLLBACK TO never reach the store
            savepoint = conn.begin_nested()
            for _ in range(rng.randint(1, 5)):
                run_statement(conn, rng)
            savepoint.rollback()
        if rng.random() < 0.1:
            conn.exec_driver_sql("DELETE FROM " + rng.choice(list(CONTENT)))
        if rng.random() < 0.1:
            transaction.rollback()


def content(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {name: [tuple(row) for row in conn.exec_driver_sql(sql)]
                for name, sql in CONTENT.items()}


def remove_replica(store_dir: Path) -> None:
    """Delete the host's replica: the next open rebuilds it from the snapshot and the log,
    so what a test reads back is what the commits wrote to the store."""
    (store_dir / "store.replica").unlink()
    for path in store_dir.glob("replica-*"):
        path.unlink()


@pytest.mark.parametrize("seal_ahead_rows", [SEAL_AHEAD_ROWS, 1],
                         ids=["sealed-at-commit", "sealed-after-each-statement"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reopened_store_holds_exactly_the_committed_rows(
        make_engine: Callable[..., Engine], store_dir: Path, monkeypatch: pytest.MonkeyPatch,
        seed: int, seal_ahead_rows: int) -> None:
    # Sealed after each statement, every step of a transaction (key moves, rows changed
    # again, savepoints rolled back, failed statements) must still give its final state.
    monkeypatch.setattr(dbapi, "SEAL_AHEAD_ROWS", seal_ahead_rows)
    sealed_ahead = store.METRICS["commits_sealed_ahead"]
    rng = random.Random(seed)
    engine = make_engine()
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.exec_driver_sql(statement)
    for _round in range(6):
        for _ in range(25):
            random_transaction(engine, rng)
        expected = content(engine)
        assert any(expected.values())
        engine.dispose()  # closes the store; the next engine rebuilds it from the log
        remove_replica(store_dir)
        engine = make_engine()
        assert content(engine) == expected
    if seal_ahead_rows == 1:
        assert store.METRICS["commits_sealed_ahead"] > sealed_ahead + 20
    else:
        assert store.METRICS["commits_sealed_ahead"] == sealed_ahead


def test_a_bulk_transaction_is_sealed_as_its_statements_run(
        make_engine: Callable[..., Engine], store_dir: Path) -> None:
    engine = make_engine()
    in_transactions(engine, ["CREATE TABLE m (id INTEGER PRIMARY KEY, k TEXT UNIQUE, n INT)",
                             "CREATE TABLE w (k TEXT PRIMARY KEY, n INT) WITHOUT ROWID"])
    rows = SEAL_AHEAD_ROWS + 500
    sealed_ahead = store.METRICS["commits_sealed_ahead"]
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO m VALUES (?, ?, ?)",
                             [(i, f"k{i}", i) for i in range(1, rows + 1)])
        conn.exec_driver_sql("INSERT INTO w VALUES (?, ?)",
                             [(f"k{i}", i) for i in range(1, rows + 1)])
        # after the first seal: rows sealed ahead move, change, go and come back
        conn.exec_driver_sql("UPDATE m SET id = id + 100000 WHERE id <= 10")
        conn.exec_driver_sql("INSERT INTO m VALUES (5, 'new5', -5)")
        conn.exec_driver_sql("DELETE FROM m WHERE id BETWEEN 20 AND 30")
        conn.exec_driver_sql("UPDATE w SET k = 'moved' || k WHERE n <= 10")
        conn.exec_driver_sql("INSERT INTO w VALUES ('k3', -3)")
        conn.exec_driver_sql("INSERT OR REPLACE INTO m VALUES (40, 'k41', 0)")  # two rows go
    assert store.METRICS["commits_sealed_ahead"] == sealed_ahead + 1
    expected = {name: [tuple(r) for r in engine.connect().exec_driver_sql(
        f"SELECT * FROM {name} ORDER BY 1")] for name in ("m", "w")}
    engine.dispose()
    remove_replica(store_dir)
    reopened_engine = make_engine()
    with reopened_engine.connect() as conn:
        for name, rows_before in expected.items():
            assert [tuple(r) for r in conn.exec_driver_sql(
                f"SELECT * FROM {name} ORDER BY 1")] == rows_before


def test_rows_sealed_ahead_then_rolled_back_to_a_savepoint_never_reach_the_store(
        make_engine: Callable[..., Engine], store_dir: Path) -> None:
    engine = make_engine()
    in_transactions(engine, ["CREATE TABLE t (id INTEGER PRIMARY KEY, n INT)"])
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", [(i, i) for i in range(1, 101)])
        savepoint = conn.begin_nested()
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)",
                             [(i, i) for i in range(101, 102 + SEAL_AHEAD_ROWS)])
        conn.exec_driver_sql("UPDATE t SET n = -1 WHERE id <= 100")
        savepoint.rollback()
    assert reopened_after_rebuild(make_engine, engine, store_dir,
                                  "SELECT count(*), sum(n) FROM t") == [(100, 5050)]


def test_a_bulk_row_that_violates_its_schema_fails_the_commit_and_writes_nothing(
        make_engine: Callable[..., Engine], store_dir: Path) -> None:
    engine = make_engine()
    in_transactions(engine, ["CREATE TABLE t (id INTEGER PRIMARY KEY, code VARCHAR(3))"])
    rows = [(i, "ok") for i in range(1, SEAL_AHEAD_ROWS + 10)]
    rows[-5] = (rows[-5][0], "toolong")
    with pytest.raises(exc.IntegrityError, match="violates its schema at column 'code'"):
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", rows)
    with engine.begin() as conn:  # the store goes on
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", rows[:-5])
    assert reopened_after_rebuild(make_engine, engine, store_dir,
                                  "SELECT count(*) FROM t") == [(len(rows) - 5,)]


def test_a_schema_change_after_rows_were_sealed_ahead(
        make_engine: Callable[..., Engine], store_dir: Path) -> None:
    engine = make_engine()
    in_transactions(engine, ["CREATE TABLE t (id INTEGER PRIMARY KEY, n INT)"])
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)",
                             [(i, i) for i in range(1, SEAL_AHEAD_ROWS + 2)])
        conn.exec_driver_sql("ALTER TABLE t ADD COLUMN label TEXT")
        conn.exec_driver_sql("UPDATE t SET label = 'x' || id WHERE id % 2 = 0")
    assert reopened_after_rebuild(
        make_engine, engine, store_dir,
        "SELECT count(*), count(label), max(label) FROM t WHERE id <= 10") == [(10, 5, "x8")]


def reopened_after_rebuild(make_engine: Callable[..., Engine], engine: Engine,
                           store_dir: Path, sql: str) -> list[tuple]:
    engine.dispose()
    remove_replica(store_dir)
    with make_engine().connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql)]


def reopened(make_engine: Callable[..., Engine], engine: Engine, sql: str) -> list[tuple]:
    """``sql``'s rows after closing the store and rebuilding it from disk."""
    engine.dispose()
    with make_engine().connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql)]


def in_transactions(engine: Engine, *transactions: list[str]) -> None:
    """Run each list of statements as one committed transaction."""
    for statements in transactions:
        with engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)


def test_a_temporary_table_never_touches_the_stored_table_of_its_name(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    in_transactions(
        engine,
        ["CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
         "INSERT INTO notes VALUES (1, 'kept'), (2, 'also kept')"],
        ["CREATE TEMP TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
         "INSERT INTO temp.notes VALUES (1, 'scratch'), (3, 'more')",
         "UPDATE temp.notes SET id = 2 WHERE id = 3",
         "DELETE FROM temp.notes",
         "DROP TABLE temp.notes"])
    assert reopened(make_engine, engine, "SELECT * FROM notes ORDER BY id") == [
        (1, "kept"), (2, "also kept")]


def test_rows_are_followed_when_columns_shadow_the_rowid_names(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    in_transactions(
        engine,
        ['CREATE TABLE odd (rowid TEXT, "_rowid_" INT, k TEXT PRIMARY KEY)',
         "CREATE TABLE odder (rowid INT, oid INT, k INT PRIMARY KEY, v TEXT)",
         "INSERT INTO odd VALUES ('r1', 1, 'a'), ('r2', 2, 'b')",
         "INSERT INTO odder VALUES (1, 2, 3, 'x'), (4, 5, 6, 'y')"],
        ["UPDATE odd SET k = 'c' WHERE k = 'a'",
         "DELETE FROM odder WHERE v = 'x'",
         "UPDATE odder SET k = 10 WHERE v = 'y'",
         "INSERT INTO odder VALUES (7, 8, 9, 'z')"])
    assert reopened(make_engine, engine, "SELECT * FROM odd ORDER BY k") == [
        ("r2", 2, "b"), ("r1", 1, "c")]
    assert reopened(make_engine, engine, "SELECT * FROM odder ORDER BY k") == [
        (7, 8, 9, "z"), (4, 5, 10, "y")]


def test_a_table_without_key_whose_column_takes_the_rowid_name_is_refused(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    with pytest.raises(exc.NotSupportedError, match="no primary key and a column named"):
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bad (_ROWID_ INT, v TEXT)")
    with engine.begin() as conn:  # nothing of it was kept; the store works on
        conn.exec_driver_sql("CREATE TABLE good (id INTEGER PRIMARY KEY, v TEXT)")
    assert reopened(make_engine, engine, "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name != '__deltadb_replica_state'"  # the replica file's own
                    ) == [("good",)]


def test_a_table_renamed_with_new_rows_in_one_transaction(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    in_transactions(
        engine,
        ["CREATE TABLE old_name (id INTEGER PRIMARY KEY, v TEXT)",
         "INSERT INTO old_name VALUES (1, 'one')"],
        ["INSERT INTO old_name VALUES (2, 'two')",
         "ALTER TABLE old_name RENAME TO new_name",
         "UPDATE new_name SET v = 'uno' WHERE id = 1"])
    assert reopened(make_engine, engine, "SELECT * FROM new_name ORDER BY id") == [
        (1, "uno"), (2, "two")]


@pytest.mark.parametrize("same_transaction", [True, False])
def test_a_table_dropped_and_created_again_keeps_only_its_new_rows(
        make_engine: Callable[..., Engine], same_transaction: bool) -> None:
    """What ``metadata.drop_all(conn); metadata.create_all(conn)`` in one transaction does."""
    engine = make_engine()
    create = "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)"
    with engine.begin() as conn:
        conn.exec_driver_sql(create)
        conn.exec_driver_sql("INSERT INTO items VALUES (1, 'old'), (2, 'old')")
    for repeat in range(2):  # the second time, the DROP statement comes from apsw's cache
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP TABLE items")
            if not same_transaction:
                conn.commit()
            conn.exec_driver_sql(create)
            conn.exec_driver_sql("INSERT INTO items VALUES (?, 'new')", (10 + repeat,))
            conn.commit()
        assert reopened(make_engine, engine, "SELECT * FROM items") == [(10 + repeat, "new")]
        engine = make_engine()


def test_a_table_renamed_away_and_replaced_by_its_twin(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    in_transactions(
        engine,
        ["CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)",
         "INSERT INTO a VALUES (1, 'first')"],
        ["ALTER TABLE a RENAME TO b",
         "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)",
         "INSERT INTO a VALUES (2, 'second')"])
    assert reopened(make_engine, engine, "SELECT * FROM a") == [(2, "second")]
    assert reopened(make_engine, make_engine(), "SELECT * FROM b") == [(1, "first")]


def test_vacuum_compacts_the_store_and_keeps_rowid_keys(
        make_engine: Callable[..., Engine], store_dir) -> None:
    """VACUUM on SQLite renumbers the rowids of tables without an INTEGER PRIMARY KEY; here
    those rowids are the rows' keys in the store, so VACUUM checkpoints the store instead."""
    engine = make_engine()
    in_transactions(
        engine,
        ["CREATE TABLE log_lines (line TEXT, n INT)",
         "INSERT INTO log_lines VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4)"],
        ["DELETE FROM log_lines WHERE n < 3"])
    logs_before = sorted(p.name for p in store_dir.iterdir() if p.name.startswith("log"))
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM")
        with pytest.raises(exc.NotSupportedError, match="unencrypted"):
            conn.exec_driver_sql(f"VACUUM INTO '{store_dir.parent / 'plain.db'}'")
    assert not (store_dir.parent / "plain.db").exists()
    assert sorted(p.name for p in store_dir.iterdir() if p.name.startswith("log")) != logs_before
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM log_lines WHERE n = 4")
    assert reopened(make_engine, engine, "SELECT line, n FROM log_lines") == [("c", 3)]


@pytest.mark.parametrize("without_rowid", [True, False])
def test_rows_changed_after_columns_were_dropped_in_the_same_transaction(
        make_engine: Callable[..., Engine], without_rowid: bool) -> None:
    engine = make_engine()
    suffix = " WITHOUT ROWID" if without_rowid else ""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE shrink (a INT, b INT, k TEXT PRIMARY KEY){suffix}")
        conn.exec_driver_sql("INSERT INTO shrink VALUES (1, 2, 'x'), (3, 4, 'y')")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE shrink SET a = 10 WHERE k = 'x'")  # followed before DDL
        conn.exec_driver_sql("ALTER TABLE shrink DROP COLUMN a")
        conn.exec_driver_sql("ALTER TABLE shrink DROP COLUMN b")
        conn.exec_driver_sql("UPDATE shrink SET k = 'z' WHERE k = 'y'")
        conn.exec_driver_sql("DELETE FROM shrink WHERE k = 'x'")
        conn.exec_driver_sql("INSERT INTO shrink VALUES ('w')")
    assert reopened(make_engine, engine, "SELECT k FROM shrink ORDER BY k") == [("w",), ("z",)]


def test_a_drop_inside_a_string_of_statements_is_followed(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    create = "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)"
    with engine.begin() as conn:
        conn.exec_driver_sql(create)
        conn.exec_driver_sql("INSERT INTO items VALUES (1, 'old')")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO items VALUES (2, 'old'); DROP TABLE items; {create}")
        conn.exec_driver_sql("INSERT INTO items VALUES (3, 'new')")
    assert reopened(make_engine, engine, "SELECT * FROM items") == [(3, "new")]


def test_statements_with_common_table_expressions_read_or_write_as_they_say(
        make_engine: Callable[..., Engine], store_dir: Path) -> None:
    """A WITH query only reads (no replica transaction for it); a WITH that ends in a write,
    or names one in a string, is a write like any other and reaches the store's log."""
    engine = make_engine()
    in_transactions(engine, ["CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)"])
    with engine.begin() as conn:
        conn.exec_driver_sql("WITH n(x) AS (VALUES (1), (2), (3)) "
                             "INSERT INTO t SELECT x, 'row ' || x FROM n")
        conn.exec_driver_sql("WITH o(x) AS (SELECT 2) UPDATE t SET note = 'second' "
                             "WHERE id IN (SELECT x FROM o)")
        conn.exec_driver_sql("WITH o(x) AS (SELECT 3) DELETE FROM t WHERE id IN (SELECT x FROM o)")
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "WITH RECURSIVE up(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM up WHERE x < 3) "
            "SELECT t.id, t.note, 'do not delete' FROM up JOIN t ON t.id = up.x ORDER BY 1").all()
        assert [tuple(r) for r in found] == [(1, "row 1", "do not delete"),
                                             (2, "second", "do not delete")]
    with engine.connect() as conn:
        count = conn.exec_driver_sql("WITH ids(id) AS (SELECT id FROM t) SELECT count(*) FROM ids")
        assert count.scalar() == 2
        assert not conn.connection.dbapi_connection._begun  # the read opened no capture
    engine.dispose()
    remove_replica(store_dir)
    with make_engine().connect() as conn:
        assert [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM t ORDER BY 1")] == [
            (1, "row 1"), (2, "second")]
