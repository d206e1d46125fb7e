"""MySQL/MariaDB against a real server: isolation, schema template, rollback fixture, the
external backend's namespace, refused credentials, running as root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pymysql
import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.plugin.state import get_registry
from pytest_commons.services.mysql.fixtures import OWNERS_DB, MysqlDatabase
from pytest_commons.services.mysql.spec import MysqlInfo, MysqlSpec
from tests.helpers import fixture_file

SCHEMA = fixture_file("sql", "mysql", "objects.sql")


@pytest.fixture(scope="session")
def mysql_schema() -> Path:
    return SCHEMA


def scalar(conn: Any, sql: str, args: Any = None, column: int = 0) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    return row[column] if row else None


@pytest.mark.parametrize("email", ["a@x.io", "b@x.io"])
def test_each_test_gets_a_fresh_database_from_the_template(
    mysql: MysqlDatabase, email: str
) -> None:
    conn = mysql.connect()
    assert scalar(conn, "SELECT COUNT(*) FROM users") == 0
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (email) VALUES (%s)", (email,))
    conn.commit()
    assert scalar(conn, "SELECT COUNT(*) FROM users") == 1
    assert scalar(conn, "SELECT DATABASE()") == mysql.name
    assert mysql.name.startswith("pc_")
    assert mysql.url.endswith("/" + mysql.name)


def test_template_rows_views_triggers_and_foreign_keys_are_copied(mysql: MysqlDatabase) -> None:
    conn = mysql.connect(autocommit=True)
    assert scalar(conn, "SELECT GROUP_CONCAT(shout ORDER BY name) FROM colors") == "BLUE,RED"
    assert scalar(conn, "SELECT n FROM aa_color_count") == 2
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (email) VALUES ('t@x.io')")
        with pytest.raises(pymysql.err.IntegrityError):  # the foreign key came along
            cur.execute("INSERT INTO orders (user_id) VALUES (999)")
    assert scalar(conn, "SELECT email FROM audit") == "t@x.io"  # the trigger came along


def test_procedures_functions_and_events_are_copied(mysql: MysqlDatabase) -> None:
    """Issue 16: routines and events of ``mysql_schema`` reach every test database."""
    conn = mysql.connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CALL add_user('p@x.io')")
    assert scalar(conn, "SELECT user_count()") == 1
    assert scalar(conn, "SELECT COUNT(*) FROM audit WHERE email = 'proc:p@x.io'") == 1
    events = "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()"
    assert scalar(conn, events) == "purge_audit"


def test_named_time_zones_are_loaded(mysql: MysqlDatabase) -> None:
    """Issue 16: ``CONVERT_TZ`` with a named zone answers (the time zone tables are filled)."""
    conn = mysql.connect()
    value = scalar(conn, "SELECT CONVERT_TZ('2024-01-01 12:00:00', 'UTC', 'America/New_York')")
    assert str(value) == "2024-01-01 07:00:00"


def test_connect_skips_tls(mysql: MysqlDatabase) -> None:
    """Loopback connections skip the TLS handshake (its cost: docs/benchmarks-mysql.md), through
    ``.connect()`` and through ``connect_kwargs()`` alike."""
    for conn in (mysql.connect(), pymysql.connect(**mysql.connect_kwargs())):
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                assert cur.fetchone() == ("Ssl_cipher", "")
        finally:
            conn.close()


def test_database_urls_parse_back(
    mysql: MysqlDatabase, mysql_service: ServiceHandle[MysqlInfo]
) -> None:
    info = MysqlSpec().parse_url(mysql.url)
    assert info == mysql.info
    assert MysqlSpec().parse_url(mysql.sqlalchemy_url) == mysql.info
    assert mysql_service.info.dbname == ""


def test_rollback_fixture_app_commit_stays_inside(mysql_tx: Any) -> None:
    with mysql_tx.cursor() as cur:
        cur.execute("INSERT INTO users (email) VALUES ('tx@x.io')")
        mysql_tx.commit()  # what application code does
        mysql_tx.begin()
        cur.execute("INSERT INTO users (email) VALUES ('nested@x.io')")
        mysql_tx.commit()
    assert scalar(mysql_tx, "SELECT COUNT(*) FROM users") == 2


def test_rollback_fixture_starts_from_the_template(mysql_tx: Any) -> None:
    assert scalar(mysql_tx, "SELECT COUNT(*) FROM users") == 0
    assert scalar(mysql_tx, "SELECT COUNT(*) FROM audit") == 0
    assert scalar(mysql_tx, "SELECT COUNT(*) FROM colors") == 2


def test_rollback_fixture_app_rollback_keeps_outer(mysql_tx: Any) -> None:
    with mysql_tx.cursor() as cur:
        cur.execute("INSERT INTO users (email) VALUES ('kept@x.io')")
        mysql_tx.commit()
        cur.execute("INSERT INTO users (email) VALUES ('dropped@x.io')")
        mysql_tx.rollback()
        cur.execute("SELECT email FROM users")
        assert [r[0] for r in cur.fetchall()] == ["kept@x.io"]


def test_rollback_fixture_starts_over_after_ddl_and_ignores_autocommit(mysql_tx: Any) -> None:
    """DDL commits implicitly and takes the outer savepoint with it (MySQL error 1305 on the
    next RELEASE / ROLLBACK TO): commit() and rollback() start a new one instead of failing;
    autocommit(True), which would commit the outer transaction, is ignored inside the test."""
    table = f"ddl_{os.getpid()}_{id(mysql_tx) % 100000}"
    assert scalar(mysql_tx, "SELECT @@autocommit") == 0
    with mysql_tx.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (n INT)")  # implicit commit: the savepoint is gone
        mysql_tx.commit()
        cur.execute(f"INSERT INTO {table} VALUES (1)")
        mysql_tx.rollback()
        assert scalar(mysql_tx, f"SELECT COUNT(*) FROM {table}") == 0
        cur.execute(f"DROP TABLE {table}")  # DDL again (and nothing left for later tests)
        cur.execute("INSERT INTO users (email) VALUES ('written-after-ddl@x.io')")
        mysql_tx.rollback()  # rolls that back, then a new savepoint (not committed by it)
        assert scalar(mysql_tx, "SELECT COUNT(*) FROM users") == 0
        mysql_tx.autocommit(True)
        assert scalar(mysql_tx, "SELECT @@autocommit") == 0
        cur.execute("INSERT INTO users (email) VALUES ('after-ddl@x.io')")
        mysql_tx.rollback()
    assert scalar(mysql_tx, "SELECT COUNT(*) FROM users") == 0


def test_rollback_fixture_closed_by_the_test(mysql_tx: Any) -> None:
    """A test that closes the connection: the teardown leaves it be (the next test gets a new
    one); rolling back a closed connection would error here."""
    with mysql_tx.cursor() as cur:
        cur.execute("INSERT INTO users (email) VALUES ('closed@x.io')")
    mysql_tx.close()
    assert not mysql_tx.open


def test_rollback_fixture_survives_an_error(mysql_tx: Any) -> None:
    with mysql_tx.cursor() as cur:
        cur.execute("INSERT INTO users (email) VALUES ('dup@x.io')")
        with pytest.raises(pymysql.err.IntegrityError):
            cur.execute("INSERT INTO users (email) VALUES ('dup@x.io')")
    mysql_tx.rollback()
    assert scalar(mysql_tx, "SELECT COUNT(*) FROM users") == 0


def test_rollback_fixture_is_invisible_to_other_connections(
    mysql_tx: Any, mysql_service: ServiceHandle[MysqlInfo]
) -> None:
    with mysql_tx.cursor() as cur:
        cur.execute("INSERT INTO users (email) VALUES ('hidden@x.io')")
    mysql_tx.commit()
    other = pymysql.connect(**mysql_service.info.with_db(mysql_tx.db.decode()).connect_kwargs())
    try:
        assert scalar(other, "SELECT COUNT(*) FROM users") == 0
    finally:
        other.close()


def test_handle_reports_backend_and_version(mysql_service: ServiceHandle[MysqlInfo]) -> None:
    assert mysql_service.backend in ("local", "docker", "external")
    assert mysql_service.version[:2].isdigit()
    masked = MysqlInfo(host="127.0.0.1", port=1, user="u", password="s3cret-pw", dbname="d")
    assert "s3cret-pw" not in repr(masked)
    assert "***" in repr(masked)
    if mysql_service.info.password:
        assert mysql_service.info.password not in repr(mysql_service)


def test_running_as_root_serves_root_over_tcp(mysql_service: ServiceHandle[MysqlInfo]) -> None:
    if mysql_service.backend != "local":
        pytest.skip("about the local backend")
    conn = MysqlSpec().connect(mysql_service.info)
    try:
        user = scalar(conn, "SELECT CURRENT_USER()")
        assert user.startswith("root@")
        assert scalar(conn, "SELECT @@bind_address") == "127.0.0.1"
        assert scalar(conn, "SELECT @@character_set_server") == "utf8mb4"
        datadir = Path(scalar(conn, "SELECT @@datadir"))
    finally:
        conn.close()
    pid = mysql_service.instance.pid
    assert pid is not None
    server_uid = os.stat(f"/proc/{pid}").st_uid
    if os.geteuid() == 0:
        assert server_uid != 0, "the server must not run as root"
        assert datadir.stat().st_uid == server_uid
    else:
        assert server_uid == os.geteuid()


def test_refused_credentials_fail_fast_with_the_reason(
    mysql_service: ServiceHandle[MysqlInfo],
) -> None:
    from pytest_commons.errors import ProbeRefused

    wrong = MysqlInfo(
        host=mysql_service.info.host,
        port=mysql_service.info.port,
        user="nobody_here",
        password="wrong",
    )
    admin = mysql_service.spec.connect(mysql_service.info.with_db(""))
    try:
        denied = "SHOW GLOBAL STATUS LIKE 'Access_denied_errors'"
        before = int(scalar(admin, denied, None, column=1))
        with pytest.raises(ProbeRefused, match="Access denied"):
            MysqlSpec().probe(wrong, timeout=60)
        # one attempt, not a retry loop until the timeout
        assert int(scalar(admin, denied, None, column=1)) - before == 1
    finally:
        admin.close()


EXTERNAL_TESTS = """
import os, pytest

@pytest.fixture(scope="session")
def mysql_schema():
    return "CREATE TABLE t (id INT PRIMARY KEY)"

@pytest.mark.parametrize("n", range(3))
def test_db(mysql, mysql_service, n):
    assert mysql_service.backend == "external"
    with open(os.environ["NAMES_FILE"], "a") as fh:
        fh.write(mysql.name + "\\n")
    conn = mysql.connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (%s)", (n,))
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone() == (1,)

def test_tx(mysql_tx):
    with mysql_tx.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
    mysql_tx.commit()
"""


def _databases(conn: Any, ignore: str) -> set[str]:
    """The server's databases except this (outer) run's own, which it drops in the background."""
    with conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return {row[0] for row in cur.fetchall() if not row[0].startswith(ignore)}


def test_external_backend_touches_only_its_own_databases(
    mysql_service: ServiceHandle[MysqlInfo],
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    pytestconfig: pytest.Config,
) -> None:
    ours = f"pc_{get_registry(pytestconfig).ctx.run_id}_".replace("-", "_").lower()
    if mysql_service.backend != "local":
        pytest.skip("about the local backend: needs a server this run owns")
    admin = MysqlSpec().connect(mysql_service.info)
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS keep_me")
            cur.execute("CREATE TABLE IF NOT EXISTS keep_me.data (v VARCHAR(10))")
            cur.execute("DELETE FROM keep_me.data")
            cur.execute("INSERT INTO keep_me.data VALUES ('precious')")
        before = _databases(admin, ours)
        clean_env.setenv("PYTEST_COMMONS_MYSQL_URL", mysql_service.info.with_db("keep_me").url)
        clean_env.setenv("PYTEST_COMMONS_MYSQL_BACKEND", "external")
        names_file = pytester.path / "names.txt"
        clean_env.setenv("NAMES_FILE", str(names_file))
        pytester.makepyfile(EXTERNAL_TESTS)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
        result.assert_outcomes(passed=4)
        names = names_file.read_text().split()
        assert len(set(names)) == 3
        assert all(name.startswith("pc_") and not name.startswith(ours) for name in names)
        result.stdout.fnmatch_lines(["*mysql*external*"])
        assert scalar(admin, "SELECT GROUP_CONCAT(v) FROM keep_me.data") == "precious"
        # the one database a run may add on a shared server: the owner stamps (its own row is
        # gone at the end: a run that ended is nobody's leftover). Other runs' pc_ databases
        # may come and go meanwhile (tests on the other xdist worker use this server too)
        after = _databases(admin, ours)
        inner = {name.rsplit("_", 1)[0] for name in names}
        left = {d for d in after if any(d.startswith(f"{prefix}_") for prefix in inner)}
        assert not left, "the inner run left databases"
        others = {d for d in before if not d.startswith("pc_")} - {OWNERS_DB}
        assert others <= after, "the inner run removed databases that were not its own"
        assert after - before <= {OWNERS_DB} | {d for d in after if d.startswith("pc_")}
        with admin.cursor() as cur:
            cur.execute(f"SELECT owner FROM `{OWNERS_DB}`.owners")
            owners = {str(owner) for (owner,) in cur.fetchall()}
        assert not inner & owners, "the inner run's owner stamp outlived it"
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS keep_me")
        admin.close()


def test_external_backend_with_wrong_password_fails_with_remedy(
    mysql_service: ServiceHandle[MysqlInfo],
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
) -> None:
    info = mysql_service.info
    clean_env.setenv("PYTEST_COMMONS_MYSQL_URL", f"mysql://root:wrong-secret@{info.address}/")
    clean_env.setenv("PYTEST_COMMONS_MYSQL_BACKEND", "external")
    pytester.makepyfile("def test_db(mysql):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "refused us" in out
    assert "Access denied" in out
    assert "PYTEST_COMMONS_MYSQL_URL" in out
    assert "wrong-secret" not in out


def test_an_object_that_cannot_be_copied_is_named(mysql: MysqlDatabase) -> None:
    from pytest_commons.services.mysql.fixtures import SchemaCopyError, _show_create

    conn = mysql.connect()
    with conn.cursor() as cur, pytest.raises(SchemaCopyError, match="procedure gone_away"):
        _show_create(cur, "PROCEDURE", f"`{mysql.name}`.", "gone_away", 2)
