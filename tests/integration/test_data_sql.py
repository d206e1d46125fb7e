"""The data tools on real databases: seed files and table snapshots through PyMySQL (MariaDB),
sqlite3 and SQLAlchemy on every ``sql_db`` backend, and ``isolated_example`` on each driver."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from pytest_commons.data import load_seed_file, snapshot_table
from pytest_commons.data.seed_data import SeedDataError
from pytest_commons.data.strategies import (
    aisolated_example,
    isolated_example,
    sql_datetimes,
    sql_floats,
    sql_integers,
    sql_text,
)

sa = pytest.importorskip("sqlalchemy")
from sqlalchemy import text  # noqa: E402

FIXTURE_OK = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# a script the statement splitter must get right: semicolons in comments and quotes
SCRIPT = """\
/* the orders table; reserved words as names */
{create} {q}order{q} (
    id INTEGER PRIMARY KEY,
    note VARCHAR(60),
    {q}rate%{q} INTEGER,  -- a column whose name holds a %; a placeholder look-alike
    doc TEXT
);
INSERT INTO {q}order{q} (id, note) VALUES (1, 'semi;colon "quoted" -- not a comment');;
-- an empty statement above, and no ";" after the last one
UPDATE {q}order{q} SET {q}rate%{q} = NULL WHERE id = 1
"""
ROWS = """\
order:
  - {id: 2, note: "100% sure", "rate%": 7, doc: {tags: [a, b]}}
  - {}
  - {id: 3, doc: [1, 2]}
"""
EXPECTED = [
    {"id": 1, "note": 'semi;colon "quoted" -- not a comment', "rate%": None, "doc": None},
    {"id": 2, "note": "100% sure", "rate%": 7, "doc": '{"tags": ["a", "b"]}'},
    {"id": 3, "note": None, "rate%": None, "doc": "[1, 2]"},
]


def _seed_dir(tmp_path: Path, quote: str, create: str = "CREATE TABLE") -> Path:
    (tmp_path / "schema.sql").write_text(SCRIPT.format(q=quote, create=create))
    (tmp_path / "orders.yaml").write_text(ROWS)
    return tmp_path


def _load_and_snapshot(conn: Any, seeds: Path) -> None:
    assert load_seed_file(conn, "schema.sql", base=seeds) == 0
    # the empty row is skipped; mappings and lists are stored as JSON text
    assert load_seed_file(conn, "orders.yaml", base=seeds) == 2
    assert snapshot_table(conn, "order", order_by="id") == EXPECTED
    assert snapshot_table(conn, "order", columns=["id"], where="id > 1", order_by=["id DESC"]) == [
        {"id": 3},
        {"id": 2},
    ]


def test_seed_files_and_snapshots_on_mariadb(mysql: Any, tmp_path: Path) -> None:
    conn = mysql.connect()
    _load_and_snapshot(conn, _seed_dir(tmp_path, "`"))


def test_seed_files_and_snapshots_on_sqlite(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    try:
        _load_and_snapshot(conn, _seed_dir(tmp_path, '"'))
    finally:
        conn.close()


@pytest.mark.backends("postgres", "mysql", "sqlite")
def test_seed_files_and_snapshots_through_sqlalchemy(sql_db: Any, tmp_path: Path) -> None:
    # a temporary table: created and gone with this test on every backend, even on MySQL
    # where CREATE TABLE would commit
    quote = "`" if sql_db.backend == "mysql" else '"'
    seeds = _seed_dir(tmp_path, quote, create="CREATE TEMPORARY TABLE IF NOT EXISTS")
    _load_and_snapshot(sql_db.session, seeds)
    assert snapshot_table(sql_db.connection, "order", columns=["id"]) == [
        {"id": 1},
        {"id": 2},
        {"id": 3},
    ]


def test_seed_errors_name_the_file_and_the_cause(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    (tmp_path / "broken.sql").write_text("CREATE TABLE t (id int);\nINSERT INTO nope VALUES (1);\n")
    with pytest.raises(SeedDataError, match=r"^broken\.sql: OperationalError: no such table: nope"):
        load_seed_file(conn, "broken.sql", base=tmp_path)
    with pytest.raises(SeedDataError, match=r"^gone\.sql: seed file not found \(looked at .*gone"):
        load_seed_file(conn, "gone.sql", base=tmp_path)
    (tmp_path / "nope.json").write_text('{"nope": [{"id": 1}]}')
    with pytest.raises(
        SeedDataError,
        match=r"^nope\.json: table nope: cannot read its columns: no such table: nope",
    ):
        load_seed_file(conn, "nope.json", base=tmp_path)
    conn.close()


def test_unsupported_connection_is_refused_with_the_accepted_kinds() -> None:
    with pytest.raises(
        TypeError, match=r"unsupported connection dict; pass a psycopg 3 or PyMySQL"
    ):
        snapshot_table({}, "t")


# ---------------------------------------------------------------- isolated_example


@pytest.fixture
def mariadb(mysql: Any) -> Any:
    conn = mysql.connect()
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE rt (t TEXT, u BIGINT UNSIGNED, ts DATETIME(6), f DOUBLE) "
            "CHARACTER SET utf8mb4"
        )
    return conn


@FIXTURE_OK
@given(
    t=sql_text("mariadb", max_size=50),
    u=sql_integers("mysql", unsigned=True),
    ts=sql_datetimes("mysql", fsp=6),
    f=sql_floats("mysql"),
)
def test_values_round_trip_through_mariadb(
    mariadb: Any, t: str, u: int, ts: dt.datetime, f: float
) -> None:
    with isolated_example(mariadb), mariadb.cursor() as cur:
        cur.execute("INSERT INTO rt VALUES (%s, %s, %s, %s)", (t, u, ts, f))
        cur.execute("SELECT t, u, ts, f FROM rt")
        rows = cur.fetchall()
        assert len(rows) == 1  # the previous examples' rows are gone
        assert rows[0] == (t, u, ts, f)


def test_isolated_example_on_an_autocommit_psycopg_connection(postgres: Any) -> None:
    conn = postgres.connect(autocommit=True)
    conn.execute("CREATE TABLE items (name text)")
    conn.execute("INSERT INTO items VALUES ('kept')")
    with isolated_example(conn):
        conn.execute("INSERT INTO items VALUES ('example')")
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (2,)
    assert conn.execute("SELECT name FROM items").fetchall() == [("kept",)]
    # the transaction it opened is closed again: the connection is back in autocommit
    assert conn.info.transaction_status.name == "IDLE"


def test_isolated_example_survives_an_example_that_closes_the_connection(postgres: Any) -> None:
    for autocommit in (False, True):
        conn = postgres.connect(autocommit=autocommit)
        with isolated_example(conn):
            conn.close()
        assert conn.closed


def test_isolated_example_inside_an_open_sqlite_transaction(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    conn.execute("CREATE TABLE items (name text)")
    conn.execute("INSERT INTO items VALUES ('kept')")  # opens a transaction
    assert conn.in_transaction
    with isolated_example(conn):
        conn.execute("INSERT INTO items VALUES ('example')")
    assert conn.in_transaction  # the test's transaction goes on
    conn.commit()
    assert conn.execute("SELECT name FROM items").fetchall() == [("kept",)]
    conn.close()


@pytest.mark.backends("postgres", "mysql", "sqlite")
def test_isolated_example_on_a_sqlalchemy_connection(sql_db: Any) -> None:
    conn = sql_db.connection
    conn.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS uniq (n INTEGER PRIMARY KEY)"))
    conn.execute(text("INSERT INTO uniq VALUES (1)"))
    for n in (2, 3):
        with isolated_example(conn):
            conn.execute(text("INSERT INTO uniq VALUES (:n)"), {"n": n})
            # a failing statement inside the example is undone with it
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(text("INSERT INTO uniq VALUES (1)"))
    assert conn.execute(text("SELECT n FROM uniq")).scalars().all() == [1]


def test_isolated_example_after_the_example_rolled_back_itself(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE items (name text)"))
        conn.commit()
        with isolated_example(conn):
            conn.execute(text("INSERT INTO items VALUES ('x')"))
            conn.rollback()  # code under test gave up: nothing is left to undo
        assert conn.execute(text("SELECT count(*) FROM items")).scalar_one() == 0
    engine.dispose()


@pytest.mark.asyncio
@pytest.mark.backends("postgres", "mysql", "sqlite")
async def test_aisolated_example_with_an_async_session(sql_db: Any) -> None:
    session = sql_db.async_session
    await session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS notes (body TEXT)"))
    await session.execute(text("INSERT INTO notes VALUES ('kept')"))
    for n in range(2):
        async with aisolated_example(session) as s:
            await s.execute(text("INSERT INTO notes VALUES (:b)"), {"b": f"example {n}"})
            got = (await s.execute(text("SELECT count(*) FROM notes"))).scalar_one()
            assert got == 2
    rows = (await session.execute(text("SELECT body FROM notes"))).scalars().all()
    assert rows == ["kept"]


@pytest.mark.asyncio
@pytest.mark.backends("postgres", "sqlite")
async def test_aisolated_example_with_an_async_connection(sql_db: Any) -> None:
    conn = sql_db.async_connection
    await conn.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS notes (body TEXT)"))
    async with aisolated_example(conn) as c:
        await c.execute(text("INSERT INTO notes VALUES ('example')"))
    # an example that ended its own savepoint leaves nothing for the block to undo
    async with aisolated_example(conn) as c:
        await c.execute(text("INSERT INTO notes VALUES ('released')"))
        await c.get_nested_transaction().commit()
    rows = (await conn.execute(text("SELECT body FROM notes"))).scalars().all()
    assert rows == ["released"]


@pytest.mark.backends("postgres", "mysql", "sqlite")
def test_isolated_example_undoes_a_commit_of_sql_db_session(sql_db: Any) -> None:
    session = sql_db.session
    session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS events (body VARCHAR(20))"))
    session.execute(text("INSERT INTO events VALUES ('before')"))  # pending: the baseline
    for n in range(2):
        with isolated_example(session) as s:
            s.execute(text("INSERT INTO events VALUES (:b)"), {"b": f"example {n}"})
            s.commit()  # application code that commits
            s.execute(text("INSERT INTO events VALUES ('after commit')"))
            assert s.execute(text("SELECT count(*) FROM events")).scalar_one() == 3
    rows = session.execute(text("SELECT body FROM events")).scalars().all()
    assert rows == ["before"]


@pytest.mark.asyncio
@pytest.mark.backends("postgres", "mysql", "sqlite")
async def test_aisolated_example_undoes_a_commit_of_the_async_session(sql_db: Any) -> None:
    session = sql_db.async_session
    await session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS events (body VARCHAR(20))"))
    for n in range(2):
        async with aisolated_example(session) as s:
            await s.execute(text("INSERT INTO events VALUES (:b)"), {"b": f"example {n}"})
            await s.commit()
            assert (await s.execute(text("SELECT count(*) FROM events"))).scalar_one() == 1
    rows = (await session.execute(text("SELECT body FROM events"))).scalars().all()
    assert rows == []
