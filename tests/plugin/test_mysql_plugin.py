"""The MySQL/MariaDB service in inner pytest runs: marker, missing or broken server binary,
malformed URL, xdist sharing one server with per-worker databases, no server left behind."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from pytest_commons.core.run import runtime_root
from pytest_commons.services.mysql.spec import MysqlSpec

MYSQL_TEST = """
def test_mysql(mysql):
    conn = mysql.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
"""

RECORD_TESTS = """
import json, os, pytest

@pytest.fixture(scope="session")
def mysql_schema():
    return "CREATE TABLE t (n INT PRIMARY KEY)"

@pytest.mark.parametrize("n", range(6))
def test_record(mysql, mysql_service, n):
    conn = mysql.connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (%s)", (n,))
        cur.execute("SELECT n FROM t")
        assert cur.fetchall() == ((n,),)
    with open(os.path.join(os.environ["MYSQL_RECORD_DIR"], f"{n}.json"), "w") as fh:
        json.dump({"port": mysql.info.port, "db": mysql.name, "pid": mysql_service.instance.pid,
                   "worker": os.environ.get("PYTEST_XDIST_WORKER", "master"),
                   "backend": mysql_service.backend}, fh)
"""

needs_server = pytest.mark.skipif(
    MysqlSpec().local_unavailable() is not None, reason="no local MariaDB/MySQL server"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def _wait_dead(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_marker_is_added_and_registered(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(MYSQL_TEST + "\ndef test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-m", "not mysql", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_plain*"])
    result.stdout.no_fnmatch_line("*test_mysql*")
    result = pytester.runpytest_subprocess("-m", "mysql", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_mysql*"])
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.mysql:*"])


@pytest.mark.parametrize("missing", ["skip", "fail"])
def test_missing_explicit_binary_is_a_usage_error_naming_its_source(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, missing: str
) -> None:
    # an explicit server path that does not exist is a mistake in the configuration, not a
    # missing service: a usage error at configure time whatever --services-missing says
    # (issue 17 item 14; it used to be a skip, or an error under --services-missing=fail)
    clean_env.setenv("PYTEST_COMMONS_MYSQL_SERVER", "/nonexistent")
    pytester.makepyfile(MYSQL_TEST)
    result = pytester.runpytest_subprocess("--mysql-backend=local", f"--services-missing={missing}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*mysql_server='/nonexistent' (from $PYTEST_COMMONS_MYSQL_SERVER) does not exist*"
            "--mysql-server*"
        ]
    )
    result.stdout.no_fnmatch_line("*passed*")


def test_explicit_binary_that_is_not_executable_is_a_usage_error(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plain = tmp_path / "mariadbd"
    plain.write_text("not a program\n")
    plain.chmod(0o644)
    clean_env.setenv("PYTEST_COMMONS_MYSQL_SERVER", str(plain))
    pytester.makepyfile(MYSQL_TEST)
    result = pytester.runpytest_subprocess("--mysql-backend=local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*mysql_server=*(from $PYTEST_COMMONS_MYSQL_SERVER) is not an executable file*"]
    )


@needs_server
def test_server_that_dies_at_start_fails_with_its_log(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    # named mariadbd, so the real mariadb-install-db prepares its data directory; then it dies
    # (in a directory the unprivileged server user can reach when we are root)
    bindir = runtime_root() / f"fake-mariadb-{os.getpid()}"
    bindir.mkdir(mode=0o755, exist_ok=True)
    request.addfinalizer(lambda: shutil.rmtree(bindir, ignore_errors=True))
    fake = bindir / "mariadbd"
    fake.write_text("#!/bin/sh\necho '[ERROR] InnoDB: the disk caught fire' >&2\nexit 3\n")
    fake.chmod(0o755)
    clean_env.setenv("PYTEST_COMMONS_MYSQL_SERVER", str(fake))
    clean_env.setenv("PYTEST_COMMONS_COMMONS_CACHE_DIR", str(tmp_path / "cache"))
    pytester.makepyfile(MYSQL_TEST)
    result = pytester.runpytest_subprocess("--mysql-backend=local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*mysql (local backend): the server exited with code 3 during start*",
            "*| [[]ERROR] InnoDB: the disk caught fire*",
        ]
    )


def test_malformed_url_is_a_usage_error(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_MYSQL_URL", "postgresql://root@127.0.0.1:3306/x")
    pytester.makepyfile(MYSQL_TEST)
    result = pytester.runpytest_subprocess("--mysql-backend=external")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*mysql_url=*(from $PYTEST_COMMONS_MYSQL_URL) is malformed*scheme must be mysql://*"]
    )


def test_refused_external_server_fails_at_once_with_remedy(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    from pytest_commons.core.host import free_port

    clean_env.setenv("PYTEST_COMMONS_MYSQL_URL", f"mysql://root@127.0.0.1:{free_port()}/")
    pytester.makepyfile(MYSQL_TEST)
    result = pytester.runpytest_subprocess("--mysql-backend=external", "--service-start-timeout=1")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            # the URL's user is named (never its password)
            "*mysql (external backend): root@127.0.0.1:* refused the connection*",
            "*remedy*PYTEST_COMMONS_MYSQL_URL*",
        ]
    )


@needs_server
def test_xdist_workers_share_one_server_with_their_own_databases(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("xdist")
    out = tmp_path / "records"
    out.mkdir()
    clean_env.setenv("MYSQL_RECORD_DIR", str(out))
    pytester.makepyfile(RECORD_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "--mysql-backend=local")
    result.assert_outcomes(passed=6)
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert len(records) == 6
    assert len({r["port"] for r in records}) == 1, "one server for the run"
    assert len({r["pid"] for r in records}) == 1
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    assert len({r["db"] for r in records}) == 6
    for record in records:
        assert f"_{record['worker']}_" in record["db"]
    assert _wait_dead(int(records[0]["pid"])), "the server outlived the run"


@needs_server
def test_failing_test_reports_normally_and_server_stops(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "records"
    out.mkdir()
    clean_env.setenv("MYSQL_RECORD_DIR", str(out))
    pytester.makepyfile(
        RECORD_TESTS
        + """
def test_fails(mysql):
    conn = mysql.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone() == (42,)
"""
    )
    result = pytester.runpytest_subprocess("--mysql-backend=local", "-k", "fails or record and 0")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*assert (0,) == (42,)*", "*mysql*local*ready in*"])
    records = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert _wait_dead(int(records[0]["pid"])), "the server outlived the run"


@needs_server
@pytest.mark.skipif(os.geteuid() != 0, reason="about the privilege drop when running as root")
def test_server_binary_the_server_user_cannot_run_fails_with_remedy(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    fake = private / "mariadbd"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    clean_env.setenv("PYTEST_COMMONS_MYSQL_SERVER", str(fake))
    pytester.makepyfile(MYSQL_TEST)
    result = pytester.runpytest_subprocess("--mysql-backend=local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*mysql (local backend): the server user (uid *) cannot execute {fake}*",
            "*remedy*--commons-server-user*",
        ]
    )


def test_a_module_overriding_mysql_schema_gets_its_own_template(
    pytester: pytest.Pytester,
) -> None:
    """The hook is session-scoped, yet a module's override applies to its tests (fresh and
    rollback fixtures) even after another module's tests made the schema-less databases."""
    plain = """
        def test_no_tables(mysql, mysql_tx):
            for conn in (mysql.connect(), mysql_tx):
                with conn.cursor() as cur:
                    cur.execute("SHOW TABLES")
                    assert cur.fetchall() == ()
        """
    pytester.makepyfile(
        test_a_plain=plain,
        test_b_schema="""
        import pytest

        @pytest.fixture(scope="session")
        def mysql_schema():
            return "CREATE TABLE users (id INT PRIMARY KEY); INSERT INTO users VALUES (7)"

        def test_users(mysql, mysql_tx, mysql_template):
            assert mysql_template is not None
            for conn in (mysql.connect(), mysql_tx):
                with conn.cursor() as cur:
                    cur.execute("SELECT id FROM users")
                    assert cur.fetchall() == ((7,),)
        """,
        test_c_plain=plain,
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--mysql-backend=local"
    )
    result.assert_outcomes(passed=3)
