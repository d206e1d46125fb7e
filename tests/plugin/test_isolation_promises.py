"""Every per-test isolation promise, checked where it can fail: one inner pytest run writes in
one test and looks in the next, in a fixed order (``-p no:randomly``, no xdist), so the check
never depends on which tests the outer run happened to put before it on the same worker.

Each inner suite also proves that the look is not vacuous: the checking test first asserts it
got the same namespace (same rollback database, same Redis index, same factory class) that the
writing test wrote to, so only the reset/rollback/drop can explain what it finds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_commons.services.mysql.spec import MysqlSpec
from pytest_commons.services.postgres.spec import PostgresSpec
from pytest_commons.services.redis.spec import RedisSpec

# the inner suites' tests run in the order written: that is what they are about
ORDERED = ("-p", "no:randomly", "-p", "no:cacheprovider", "-v")

needs_postgres = pytest.mark.skipif(
    PostgresSpec().local_unavailable() is not None, reason="no local PostgreSQL server"
)
needs_mysql = pytest.mark.skipif(
    MysqlSpec().local_unavailable() is not None, reason="no local MariaDB/MySQL server"
)
needs_redis = pytest.mark.skipif(
    RedisSpec().local_unavailable() is not None, reason="no local Redis server"
)

POSTGRES_SUITE = r"""
import os, pathlib, time
import psycopg, pytest

OUT = pathlib.Path(os.environ["ISOLATION_OUT"])

@pytest.fixture(scope="session")
def postgres_schema():
    return "CREATE TABLE t (n int PRIMARY KEY)"

def run_databases(service, prefix):
    with psycopg.connect(service.info.dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database").fetchall()
    return {name for (name,) in rows if name.startswith(prefix)}

def test_1_writes_and_commits(postgres):
    with postgres.connect() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    OUT.joinpath("first").write_text(postgres.name)

def test_2_gets_another_database_cloned_empty(postgres):
    assert postgres.name != OUT.joinpath("first").read_text()
    with postgres.connect() as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)

def test_3_earlier_databases_are_dropped_while_the_run_goes_on(postgres, postgres_service):
    first = OUT.joinpath("first").read_text()
    prefix = first.rsplit("_", 1)[0]
    deadline = time.monotonic() + 30  # the drop is in the background: give it time to land
    while first in run_databases(postgres_service, prefix) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first not in run_databases(postgres_service, prefix)

def test_4_tx_writes_are_invisible_to_other_connections(postgres_tx, postgres_service):
    postgres_tx.execute("INSERT INTO t VALUES (4)")
    postgres_tx.commit()  # what application code does: must stay inside the test
    assert postgres_tx.execute("SELECT count(*) FROM t").fetchone() == (1,)
    db = postgres_tx.info.dbname
    OUT.joinpath("txdb").write_text(db)
    with psycopg.connect(postgres_service.info.with_db(db).dsn) as other:
        assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)

def test_5_tx_writes_are_rolled_back(postgres_tx, postgres_service):
    db = postgres_tx.info.dbname
    assert db == OUT.joinpath("txdb").read_text()  # the same database: only a rollback empties it
    assert postgres_tx.execute("SELECT count(*) FROM t").fetchone() == (0,)
    with psycopg.connect(postgres_service.info.with_db(db).dsn) as other:
        assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)

def test_6_tx_left_in_error(postgres_tx):
    with pytest.raises(psycopg.errors.UndefinedTable):
        postgres_tx.execute("SELECT * FROM missing")
    # the test ends with its transaction aborted and does not roll back itself

def test_7_tx_usable_after_a_test_that_left_an_error(postgres_tx):
    assert postgres_tx.execute("SELECT count(*) FROM t").fetchone() == (0,)

def test_8_tx_closed_by_the_test(postgres_tx):
    postgres_tx.close()

def test_9_tx_works_after_a_test_closed_it(postgres_tx):
    assert postgres_tx.execute("SELECT count(*) FROM t").fetchone() == (0,)
    OUT.joinpath("txdb").write_text(postgres_tx.info.dbname)
    postgres_tx.close()  # a second replacement needs a name of its own too

def test_10_tx_works_after_another_close(postgres_tx):
    assert postgres_tx.execute("SELECT count(*) FROM t").fetchone() == (0,)
    OUT.joinpath("txdb").write_text(postgres_tx.info.dbname)

def test_11_tx_transaction_ended_after_the_test(postgres, postgres_service):
    db = OUT.joinpath("txdb").read_text()
    with psycopg.connect(postgres_service.info.dsn) as conn:
        states = conn.execute(
            "SELECT state FROM pg_stat_activity WHERE datname = %s", (db,)
        ).fetchall()
    assert states == [("idle",)]  # rolled back at the end, not left open until the next test

def test_12_no_databases_pile_up(postgres, postgres_service):
    prefix = postgres.name.rsplit("_", 1)[0]
    def per_test():
        return {n for n in run_databases(postgres_service, prefix)
                if "_tpl" not in n and "_tx" not in n}
    deadline = time.monotonic() + 30  # earlier ones are dropped in the background
    while len(per_test()) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(per_test()) <= 2, per_test()  # this test's and the one made ahead
"""

MYSQL_SUITE = r"""
import os, pathlib, time
import pymysql, pytest

OUT = pathlib.Path(os.environ["ISOLATION_OUT"])

@pytest.fixture(scope="session")
def mysql_schema():
    return "CREATE TABLE t (n INT PRIMARY KEY)"

def scalar(conn, sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args or None)
        return cur.fetchone()[0]

def run_databases(service, prefix):
    conn = pymysql.connect(**service.info.connect_kwargs())
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            return {name for (name,) in cur.fetchall() if name.startswith(prefix)}
    finally:
        conn.close()

def test_1_writes_and_creates_a_table(mysql):
    conn = mysql.connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
        cur.execute("CREATE TABLE leaked (id INT)")
    OUT.joinpath("first").write_text(mysql.name)

def test_2_gets_another_database_with_the_template_only(mysql):
    assert mysql.name != OUT.joinpath("first").read_text()
    conn = mysql.connect()
    assert scalar(conn, "SELECT COUNT(*) FROM t") == 0
    assert scalar(
        conn,
        "SELECT COUNT(*) FROM information_schema.TABLES "
        "WHERE TABLE_NAME = 'leaked' AND TABLE_SCHEMA = DATABASE()",
    ) == 0

def test_3_earlier_databases_are_dropped_while_the_run_goes_on(mysql, mysql_service):
    first = OUT.joinpath("first").read_text()
    prefix = first.rsplit("_", 1)[0]
    deadline = time.monotonic() + 30  # the drop is in the background: give it time to land
    while first in run_databases(mysql_service, prefix) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first not in run_databases(mysql_service, prefix)

def test_4_tx_writes_are_invisible_to_other_connections(mysql_tx, mysql_service):
    with mysql_tx.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (4)")
    mysql_tx.commit()
    assert scalar(mysql_tx, "SELECT COUNT(*) FROM t") == 1
    db = mysql_tx.db.decode()
    OUT.joinpath("txdb").write_text(db)
    OUT.joinpath("txconn").write_text(str(scalar(mysql_tx, "SELECT CONNECTION_ID()")))
    other = pymysql.connect(**mysql_service.info.with_db(db).connect_kwargs())
    try:
        assert scalar(other, "SELECT COUNT(*) FROM t") == 0
    finally:
        other.close()

def test_5_tx_writes_are_rolled_back(mysql_tx, mysql_service):
    db = mysql_tx.db.decode()
    assert db == OUT.joinpath("txdb").read_text()  # the same database: only a rollback empties it
    # and the same connection: one per worker, not a new one (and a stray open one) per test
    assert str(scalar(mysql_tx, "SELECT CONNECTION_ID()")) == OUT.joinpath("txconn").read_text()
    assert scalar(mysql_tx, "SELECT COUNT(*) FROM t") == 0
    other = pymysql.connect(**mysql_service.info.with_db(db).connect_kwargs())
    try:
        assert scalar(other, "SELECT COUNT(*) FROM t") == 0
    finally:
        other.close()

def test_6_tx_left_in_error(mysql_tx):
    with mysql_tx.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (6)")
        with pytest.raises(pymysql.err.IntegrityError):
            cur.execute("INSERT INTO t VALUES (6)")

def test_7_tx_usable_and_empty_after_a_test_that_left_an_error(mysql_tx):
    assert scalar(mysql_tx, "SELECT COUNT(*) FROM t") == 0
"""

REDIS_SUITE = r"""
import os, pathlib
import pytest

OUT = pathlib.Path(os.environ["ISOLATION_OUT"])

def test_1_writes(redis, redis_db):
    redis.set("left-behind", 1)
    redis.set("another", 2)
    OUT.joinpath("db").write_text(str(redis_db.db))

def test_2_same_database_is_empty(redis, redis_db):
    assert str(redis_db.db) == OUT.joinpath("db").read_text()  # emptied, not switched
    assert redis.dbsize() == 0

def test_3_writes_through_the_url(redis_url):
    import redis as redis_py
    client = redis_py.Redis.from_url(redis_url)
    try:
        client.set("via-url", 1)
    finally:
        client.close()

def test_4_url_database_is_empty_too(redis_url):
    import redis as redis_py
    client = redis_py.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()

def test_5_server_drops_every_connection(redis):
    redis.set("left-behind", 1)
    # the emptier's own connection (its FLUSHDB of the last test in flight) goes too
    redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")

def test_6_still_emptied_after_the_connection_was_lost(redis):
    assert redis.dbsize() == 0

def flushes(client):
    return client.info("commandstats").get("cmdstat_flushdb", {}).get("calls", 0)

def test_7_counts_flushes(redis):
    OUT.joinpath("flushes").write_text(str(flushes(redis)))

def test_8_one_flush_per_test_its_reply_read_late(redis):
    # test_7's teardown sent one FLUSHDB and this test's setup read its reply: exactly one
    # (a synchronous FLUSHDB on top of it would be a second)
    assert flushes(redis) - int(OUT.joinpath("flushes").read_text()) == 1

@pytest.fixture
def started_again(redis_service):
    yield
    redis_service.start()

def test_9_server_down_when_the_test_ends(started_again, redis, redis_service):
    redis.set("k", 1)
    redis_service.stop()  # the FLUSHDB after this test cannot be sent: no error for that

def test_10_emptied_after_the_server_came_back(started_again, redis, redis_service):
    assert redis.dbsize() == 0
    redis.set("works", 1)
    # down again: the emptier lost its connection at this test's start, so now it cannot
    # even connect to send the FLUSHDB; still no error, and the next test flushes itself
    redis_service.stop()

def test_11_emptied_again(redis):
    assert redis.dbsize() == 0
"""

FACTORY_SUITE = r"""
import factory, pytest
from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pytest_commons.data import register_factory

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100))

@pytest.fixture(scope="session")
def postgres_schema():
    return "CREATE TABLE users (id serial PRIMARY KEY, email varchar(100) NOT NULL)"

class UserFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        model = User
        sqlalchemy_session_persistence = "flush"
    email = factory.Faker("email")

class PolyUserFactory(SQLAlchemyFactory[User]):
    __set_primary_key__ = False

register_factory(UserFactory)
register_factory(PolyUserFactory)

def test_1_factories_bound_during_the_test(postgres, user_factory, poly_user_factory,
                                            commons_db_session):
    assert UserFactory._meta.sqlalchemy_session is commons_db_session
    assert user_factory.create().id
    assert poly_user_factory.create_sync().id

def test_2_factories_unbound_after_it():
    assert UserFactory._meta.sqlalchemy_session is None
    assert "__session__" not in vars(PolyUserFactory)
"""


def _run(pytester: pytest.Pytester, suite: str, tmp_path: Path, *args: str) -> pytest.RunResult:
    out = tmp_path / "out"
    out.mkdir()
    pytester.makepyfile(test_isolation=suite)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ISOLATION_OUT", str(out))
        return pytester.runpytest_subprocess(*ORDERED, *args)


@needs_postgres
def test_postgres_database_and_rollback_isolation_within_one_run(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _run(pytester, POSTGRES_SUITE, tmp_path, "--postgres-backend=local")
    result.assert_outcomes(passed=12)


@needs_mysql
def test_mysql_database_and_rollback_isolation_within_one_run(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _run(pytester, MYSQL_SUITE, tmp_path, "--mysql-backend=local")
    result.assert_outcomes(passed=7)


@needs_redis
def test_redis_flush_between_tests_within_one_run(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _run(pytester, REDIS_SUITE, tmp_path, "--redis-backend=local")
    result.assert_outcomes(passed=11)


@needs_postgres
def test_factories_are_unbound_after_the_test_that_used_them(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _run(pytester, FACTORY_SUITE, tmp_path, "--postgres-backend=local")
    result.assert_outcomes(passed=2)
