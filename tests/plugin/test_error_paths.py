"""Error paths of the plugin seen from pytest: what a run reports when a service cannot start,
when workers share a failure, when kept services are gone, and when the plugin is misused.

Every inner run is a pytest process of its own (``runpytest_subprocess``) with the environment
cleaned by ``clean_env``; broken installations are stood in for by scripts on PATH.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import commons_cli, fake_binary

pytestmark = pytest.mark.usefixtures("clean_env", "outer_services_settled")


REDIS_TESTS = """
import pytest

@pytest.mark.parametrize("n", range({count}))
def test_redis(redis, n):
    assert redis.ping()
"""


def _broken_redis(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A redis-server that fails at once, counting its launches; returns the count file."""
    launches = pytester.path / "launches"
    bindir = pytester.path / "brokenbin"
    fake_binary(
        bindir,
        "redis-server",
        f'echo launched >> {launches}\necho "# Fatal: bad memory setting (simulated)"\nexit 3\n',
    )
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return launches


def test_a_start_failure_is_shared_by_all_xdist_workers_not_retried(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    launches = _broken_redis(pytester, clean_env)
    pytester.makepyfile(REDIS_TESTS.format(count=6))
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "--redis-backend=local"
    )
    result.assert_outcomes(errors=6)
    assert launches.read_text().splitlines() == ["launched"], "one attempt for the whole run"
    # every worker's tests report the one recorded failure (one section each, plus the summary)
    reported = result.stdout.str().count("redis (local backend): the server exited with code 3")
    assert reported >= 6


def test_auto_reports_a_broken_local_server_as_a_failure_not_a_skip(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """Under auto, backends that are not there are skipped over; one that is there but fails
    to start is a failure (the installation is broken), with its log."""
    _broken_redis(pytester, clean_env)
    pytester.makepyfile(REDIS_TESTS.format(count=1))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--backend-order=external,local"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*redis (local backend): the server exited with code 3 during start*",
            "*| # Fatal: bad memory setting (simulated)*",
        ]
    )


def test_server_binary_the_kernel_cannot_run_is_a_clear_failure(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    bindir = pytester.path / "foreign"
    bindir.mkdir()
    foreign = bindir / "redis-server"
    foreign.write_bytes(b"\x7fELF\x02\x01\x01 built for another machine")
    foreign.chmod(0o755)
    clean_env.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    pytester.makepyfile(REDIS_TESTS.format(count=1))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--redis-backend=local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*redis (local backend): could not run {foreign}: Exec format error*",
            "*remedy: reinstall the server, or choose another --redis-backend*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


# --- --reuse-services ----------------------------------------------------------------------------
KEPT_TEST = """
def test_redis(redis, redis_service):
    assert redis.ping()
    with open("seen", "w") as fh:
        fh.write(f"{redis_service.instance.pid} {redis_service.info.port}")
"""


@pytest.fixture
def own_runtime(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime directory: other tests' kept services are not this test's. Whatever
    is kept in it is stopped at the end."""
    runtime = pytester.path / "runtime"
    runtime.mkdir()
    clean_env.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(runtime))
    yield runtime
    commons_cli("down")


def test_a_kept_server_that_died_is_replaced(pytester: pytest.Pytester, own_runtime: Path) -> None:
    pytester.makepyfile(KEPT_TEST)
    pytester.runpytest_subprocess("--reuse-services", "--redis-backend=local").assert_outcomes(
        passed=1
    )
    pid = int((pytester.path / "seen").read_text().split()[0])
    os.killpg(pid, signal.SIGKILL)  # the kept server crashed between runs
    second = pytester.runpytest_subprocess("--reuse-services", "--redis-backend=local")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["redis       local*ready in*"])
    second.stdout.no_fnmatch_line("*reused (kept running)*")
    new_pid, new_port = (pytester.path / "seen").read_text().split()
    assert int(new_pid) != pid
    kept = json.loads(commons_cli("list", "--json").stdout)["kept"]
    assert [(k["service"], str(k["info"]["port"])) for k in kept] == [("redis", new_port)]


def test_reuse_never_keeps_an_external_server(
    pytester: pytest.Pytester,
    own_runtime: Path,
    clean_env: pytest.MonkeyPatch,
    redis_service: object,
) -> None:
    from pytest_commons.core.registry import ServiceHandle

    assert isinstance(redis_service, ServiceHandle)
    info = redis_service.info
    clean_env.setenv("PYTEST_COMMONS_REDIS_URL", info.with_db(0).url)  # with its password
    pytester.makepyfile(KEPT_TEST)
    result = pytester.runpytest_subprocess("--reuse-services")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["redis       external*"])
    assert json.loads(commons_cli("list", "--json").stdout)["kept"] == []


# --- settings that do not work out ---------------------------------------------------------------
def _same_command_twice(pytester: pytest.Pytester, *args: str) -> None:
    """Two identical invocations (pytester's own runs differ in --basetemp)."""
    for _ in range(2):
        result = pytester.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=1)


def test_the_services_a_command_needed_are_remembered_once(pytester: pytest.Pytester) -> None:
    """The next identical command starts them while pytest collects (a warm start)."""
    cache = pytester.path / "cache"
    pytester.makepyfile(REDIS_TESTS.format(count=1))
    _same_command_twice(pytester, f"--commons-cache-dir={cache}")
    assert [h.read_text() for h in (cache / "hints").glob("*.services")] == ["redis"]


def test_hint_files_are_bounded_keeping_the_most_recently_used(pytester: pytest.Pytester) -> None:
    """A command in a fresh temporary directory each run (pytester, tox) makes a new hint file
    each time: the directory keeps the HINTS_KEPT most recently used (it held 1,899 here)."""
    import os
    import time

    from pytest_commons.plugin.hooks import HINTS_KEPT

    hints = pytester.path / "cache" / "hints"
    hints.mkdir(parents=True)
    now = time.time()
    for n in range(HINTS_KEPT + 40):  # hint-0000 the most recently used, then older and older
        old = hints / f"hint-{n:04d}.services"
        old.write_text("redis")
        os.utime(old, (now - 100 - n, now - 100 - n))
    pytester.makepyfile(REDIS_TESTS.format(count=1))
    _same_command_twice(pytester, f"--commons-cache-dir={pytester.path / 'cache'}")
    left = sorted(p.name for p in hints.iterdir())
    assert len(left) == HINTS_KEPT
    own = [n for n in left if not n.startswith("hint-")]
    assert len(own) == 1
    assert (hints / own[0]).read_text() == "redis"
    kept = [n for n in left if n.startswith("hint-")]
    assert kept == [f"hint-{n:04d}.services" for n in range(HINTS_KEPT - 1)]  # the newest


def test_an_unusable_cache_directory_does_not_break_a_run(pytester: pytest.Pytester) -> None:
    """The cache only makes the next run faster: a cache path that is a file is not an error
    for a run that needs nothing else from it."""
    not_a_dir = pytester.path / "cache-is-a-file"
    not_a_dir.write_text("")
    pytester.makepyfile(REDIS_TESTS.format(count=1))
    _same_command_twice(pytester, f"--commons-cache-dir={not_a_dir}")
    assert not_a_dir.read_text() == ""


def test_fixtures_without_the_plugin_say_it_is_disabled(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["pytest_commons.services.redis.fixtures"]\n')
    pytester.makepyfile(REDIS_TESTS.format(count=1))
    result = pytester.runpytest_subprocess("-p", "no:commons", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*pytest-commons is not configured (was the plugin disabled with -p no:commons?)*"]
    )


# --- sql_db misuse -------------------------------------------------------------------------------
def test_sql_db_misuse_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_sqlite(sql_db):\n    pass\n")
    result = pytester.runpytest_subprocess("--db-backends=,")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--db-backends: give at least one of postgres, mysql, sqlite*"])

    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.backends()\ndef test_none(sql_db):\n    pass\n"
    )
    result = pytester.runpytest_subprocess()
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*test_none: @pytest.mark.backends() needs at least one of postgres, mysql, sqlite*"]
    )

    pytester.makepyfile("def test_dynamic(request):\n    request.getfixturevalue('sql_db')\n")
    result = pytester.runpytest_subprocess()
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*sql_db is parametrized by the pytest-commons plugin; it was not here*"]
    )


def test_sql_db_parametrized_by_the_user_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("sql_db", ["sqlite"], indirect=True)
        def test_only_sqlite(sql_db):
            assert sql_db.backend == "sqlite"

        @pytest.mark.parametrize(argnames=["sql_db"], argvalues=[["sqlite"]], indirect=True)
        def test_list_argnames(sql_db):
            assert sql_db.backend == "sqlite"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_only_sqlite[[]sqlite[]] PASSED*"])


# --- schemas and rollback connections in a run of their own --------------------------------------
PG_SCHEMAS = {
    "schema.sql": "CREATE TABLE from_file (id int PRIMARY KEY);",
    "test_path_schema.py": """
import pathlib
import pytest

@pytest.fixture(scope="session")
def postgres_schema():
    return pathlib.Path(__file__).with_name("schema.sql")

def test_file_schema(postgres):
    with postgres.connect() as conn:
        conn.execute("insert into from_file values (1)")
        assert conn.execute("select count(*) from from_file").fetchone() == (1,)

def test_file_schema_again(postgres):
    with postgres.connect() as conn:
        assert conn.execute("select count(*) from from_file").fetchone() == (0,)

def test_restart_as_the_last_thing(postgres_service):
    postgres_service.restart()  # the session's cleanup then needs a new admin session
""",
    "test_callable_schema.py": """
import pytest

def make(conn):
    conn.execute("CREATE TABLE from_code (name text)")

@pytest.fixture(scope="session")
def postgres_schema():
    return make

def test_code_schema(postgres):
    with postgres.connect() as conn:
        assert conn.execute("select count(*) from from_code").fetchone() == (0,)

def test_closed_by_the_test(postgres_tx):
    postgres_tx.execute("insert into from_code values ('x')")
    postgres_tx.close()

def test_next_gets_a_working_connection(postgres_tx):
    assert postgres_tx.execute("select count(*) from from_code").fetchone() == (0,)
""",
}


def test_postgres_schema_from_a_file_or_code_and_a_closed_rollback_connection(
    pytester: pytest.Pytester,
) -> None:
    for name, text in PG_SCHEMAS.items():
        (pytester.path / name).write_text(text)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=6)
    result.stdout.no_fnmatch_line("*Exception ignored*")


# In a run of its own: a restart would break the outer run's other tests, and the MySQL
# template is made once per session from the first mysql_schema the session sees, so a module
# using the default (no schema) would change what later modules' overrides get.
MYSQL_SUITE = """
import pytest
from pytest_commons.services.mysql.fixtures import rollback_connection_class


def count(conn, table):
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        return cur.fetchone()[0]


def test_no_schema_means_empty_databases(mysql, mysql_template):
    assert mysql_template is None
    conn = mysql.connect()
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == ()


def test_tx_keeps_isolating_after_ddl_ends_its_transaction(mysql_tx):
    # DDL commits implicitly, ending the outer transaction and its savepoint: the
    # application's next commit() or rollback() starts a new one instead of failing
    mysql_tx.query("CREATE TABLE ddl (x INT)")
    mysql_tx.commit()
    mysql_tx.query("INSERT INTO ddl VALUES (1)")
    mysql_tx.rollback()
    assert count(mysql_tx, "ddl") == 0
    mysql_tx.query("ALTER TABLE ddl ADD COLUMN y INT")
    mysql_tx.rollback()
    mysql_tx.query("INSERT INTO ddl VALUES (2, 2)")
    mysql_tx.rollback()
    assert count(mysql_tx, "ddl") == 0


def test_tx_closed_by_the_test(mysql_tx):
    mysql_tx.close()  # the fixture leaves a closed connection alone at the end


def test_tx_after_a_closed_one_works(mysql_tx):
    assert mysql_tx.open
    assert count(mysql_tx, "ddl") == 0


def test_rollback_class_on_its_own_is_plain_pymysql(mysql):
    conn = rollback_connection_class()(**mysql.info.connect_kwargs(autocommit=False))
    observer = mysql.connect(autocommit=True)
    try:
        conn.query("CREATE TABLE plain (x INT)")
        conn.begin()
        conn.query("INSERT INTO plain VALUES (1)")
        conn.commit()
        conn.begin()
        conn.query("INSERT INTO plain VALUES (2)")
        conn.rollback()
        assert count(observer, "plain") == 1
    finally:
        conn.close()


def test_databases_after_a_restart(mysql_service):
    mysql_service.restart()  # the fixtures' admin session dies with the old server


def test_fresh_database_after_the_restart(mysql):
    conn = mysql.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == (mysql.name,)


def test_restart_as_the_last_thing(mysql_service):
    mysql_service.restart()  # the session's cleanup then needs a new admin session
"""


def test_mysql_fixtures_rollback_ddl_closed_connections_and_restarts(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mysql_suite=MYSQL_SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--mysql-backend=local"
    )
    result.assert_outcomes(passed=8)
    result.stdout.no_fnmatch_line("*Exception ignored*")


# --- data fixtures -------------------------------------------------------------------------------
def test_data_fixtures_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import uuid

        import pytest


        def test_run_seed(commons_seed):
            assert commons_seed == 4242


        def test_default_masks(snapshot_json):
            assert {"id": str(uuid.uuid4()), "at": "2024-05-01T10:00:00Z"} == snapshot_json


        def test_factory_without_a_session(commons_db_session):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--commons-seed=4242", "--snapshot-update"
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*this factory needs a SQLAlchemy session: use the sql_db fixture (or postgres)*"]
    )
    (snap,) = pytester.path.glob("__snapshots__/**/*.json")
    assert json.loads(snap.read_text()) == {"at": "<datetime>", "id": "<uuid:1>"}
