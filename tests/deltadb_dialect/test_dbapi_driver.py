"""DB-API behaviour SQLAlchemy and applications rely on, beyond the compliance suite."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import exc, text


def test_second_connection_in_same_thread_reads_but_cannot_write(make_engine) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM t"))  # holder's transaction is open
        with engine.connect() as guest:
            assert guest.execute(text("SELECT count(*) FROM t")).scalar() == 1
            with pytest.raises(exc.OperationalError, match="database is locked"):
                guest.execute(text("INSERT INTO t VALUES (2)"))
        holder.execute(text("INSERT INTO t VALUES (3)"))
        holder.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM t ORDER BY id")).scalars().all() == [1, 3]


def test_other_threads_wait_for_the_transaction_then_see_it(make_engine) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    seen: list[int] = []
    with engine.connect() as holder:
        holder.execute(text("INSERT INTO t VALUES (1)"))

        def reader() -> None:
            with engine.connect() as conn:
                seen.append(conn.execute(text("SELECT count(*) FROM t")).scalar())

        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive(), "the reader must wait for the open transaction"
        holder.commit()
    thread.join(5)
    assert seen == [1]


def test_lock_timeout_is_a_clear_operational_error(make_engine, store_dir) -> None:
    engine = make_engine()
    impatient = make_engine(f"deltadb:///{store_dir}?timeout=0.2")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    errors: list[str] = []
    with engine.connect() as holder:
        holder.execute(text("INSERT INTO t VALUES (1)"))

        def writer() -> None:
            try:
                with impatient.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (2)"))
            except exc.OperationalError as error:
                errors.append(str(error.orig))

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(5)
        holder.commit()
    assert errors and "database is locked" in errors[0]


def test_integrity_errors_keep_sqlite_messages(make_engine) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, "
                          "n INT CHECK (n > 0))"))
        conn.execute(text("CREATE TABLE c (id INTEGER PRIMARY KEY, "
                          "p INT REFERENCES p (id) ON DELETE CASCADE)"))
    cases = [
        ("INSERT INTO p VALUES (1, NULL, 1)", "NOT NULL constraint failed"),
        ("INSERT INTO p VALUES (1, 'a', 0)", "CHECK constraint failed"),
        ("INSERT INTO c VALUES (1, 99)", "FOREIGN KEY constraint failed"),
    ]
    for statement, message in cases:
        with pytest.raises(exc.IntegrityError, match=message):
            with engine.begin() as conn:
                conn.execute(text(statement))


def test_schema_violation_is_refused_before_anything_is_written(make_engine) -> None:
    engine = make_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, code VARCHAR(3), n INTEGER)"))
    with pytest.raises(exc.IntegrityError, match="violates its schema at column 'code'"):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1, 'toolong', 1)"))
    with pytest.raises(exc.IntegrityError, match="column 'n'"):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2, 'ok', 'not a number')"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0


def test_entity_documents_are_cached_and_invalidated_by_commits(make_engine,
                                                                store_dir) -> None:
    import deltadb_dialect

    engine = make_engine(f"deltadb:///{store_dir}?cache_size=10&cache_ttl=60")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)"))
        conn.execute(text("INSERT INTO t VALUES (1, 'one', x'00ff')"))
    with engine.connect() as conn:
        store = conn.connection.driver_connection.store
        conn.execute(text("SELECT 1"))  # hold the store, as the entity server does
        before = deltadb_dialect.store_metrics()
        assert store.read_document("t", (1,)) == {"id": 1, "v": "one", "b": {"$b64": "AP8="}}
        assert store.read_document("t", (1,))["v"] == "one"
        assert store.read_document("t", (2,)) is None
        after = deltadb_dialect.store_metrics()
        conn.execute(text("UPDATE t SET v = 'uno' WHERE id = 1"))
        conn.commit()
        conn.execute(text("SELECT 1"))
        assert store.read_document("t", (1,))["v"] == "uno"
    assert after["cache_hits"] - before["cache_hits"] == 1
    assert after["cache_misses"] - before["cache_misses"] == 2


def test_executescript_runs_a_schema_script_like_sqlite3(master_key, store_dir) -> None:
    from deltadb_dialect import dbapi

    connection = dbapi.connect(str(store_dir))
    connection.execute("CREATE TABLE pending (id INTEGER PRIMARY KEY)")  # committed first
    connection.executescript("""
        -- the schema; a semicolon in a comment does not end a statement
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
        CREATE TABLE audit (note INT, what TEXT);
        CREATE TRIGGER noted AFTER INSERT ON notes BEGIN
            INSERT INTO audit VALUES (new.id, 'added; by trigger');
        END;
        INSERT INTO notes (body) VALUES ('semi;colon');
        BEGIN;
        INSERT INTO notes (body) VALUES ('in a transaction');
        COMMIT;
        /* a comment alone */ ;
        INSERT INTO notes (body) VALUES ('last, without a semicolon')""")
    assert not connection.in_transaction
    with pytest.raises(connection.OperationalError, match="no such table"):
        connection.executescript("INSERT INTO notes (body) VALUES ('x'); SELECT * FROM nowhere;")
    connection.close()

    reopened = dbapi.connect(str(store_dir))
    assert reopened.execute("SELECT body FROM notes ORDER BY id").fetchall() == [
        ("semi;colon",), ("in a transaction",), ("last, without a semicolon",), ("x",)]
    assert reopened.execute("SELECT count(*) FROM audit").fetchone() == (4,)
    assert reopened.execute("SELECT count(*) FROM pending").fetchone() == (0,)
    with pytest.raises(ValueError, match="unicode"):
        reopened.executescript(b"SELECT 1")  # type: ignore[arg-type]
    assert reopened.NotSupportedError is dbapi.NotSupportedError
    reopened.close()
