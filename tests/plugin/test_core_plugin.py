"""Plugin behaviour in inner pytest runs: markers, options, skips, reports, failures, xdist."""

from __future__ import annotations

import os

import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.postgres.spec import PostgresInfo
from pytest_commons.services.redis.spec import RedisInfo
from tests.helpers import fake_binary

PG_TEST = """
def test_pg(postgres):
    with postgres.connect() as conn:
        assert conn.execute("select 1").fetchone()[0] == 1
"""
REDIS_TEST = """
def test_redis(redis):
    assert redis.ping()
"""


def test_markers_added_and_registered(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(PG_TEST + REDIS_TEST + "\ndef test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-m", "not postgres", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_redis*", "*test_plain*"])
    result.stdout.no_fnmatch_line("*test_pg*")
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.postgres: the test uses the PostgreSQL service*", "@pytest.mark.redis: *"]
    )


def test_runs_and_reports_backend_version_and_startup(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(PG_TEST + REDIS_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "commons: backends auto = external → docker → local; missing services → skip",
            "commons: postgres (*), redis (*)",
            "*commons services*",
            "postgres    local     15.* ready in *s*127.0.0.1:*",
            "redis       local     7.* ready in *s*127.0.0.1:*",
        ]
    )


def test_unavailable_service_skips_with_reasons(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(REDIS_TEST)
    result = pytester.runpytest_subprocess("--redis-backend=external", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*redis: no backend available*",
            "*external: $PYTEST_COMMONS_REDIS_URL is not set (set PYTEST_COMMONS_REDIS_URL to a "
            "Redis your CI provides)*",
        ]
    )


def test_missing_services_fail_under_ci(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(REDIS_TEST)
    clean_env.setenv("CI", "true")
    result = pytester.runpytest_subprocess("--redis-backend=external")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*failing because --services-missing=fail*"])
    result = pytester.runpytest_subprocess("--redis-backend=external", "--services-missing=skip")
    result.assert_outcomes(skipped=1)


def test_an_explicit_bindir_that_is_not_there_is_a_usage_error_not_a_skip(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(PG_TEST)
    clean_env.setenv("PYTEST_COMMONS_POSTGRES_BINDIR", str(pytester.path / "nowhere"))
    clean_env.setenv("PYTEST_COMMONS_BACKEND_ORDER", "external,local")
    result = pytester.runpytest_subprocess("-rs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*postgres_bindir='*nowhere' (from $PYTEST_COMMONS_POSTGRES_BINDIR) does not exist*"]
    )


def test_option_precedence_cli_env_ini(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nredis_backend = external\n")
    pytester.makepyfile(REDIS_TEST)
    # ini alone: external (not configured) -> skip
    pytester.runpytest_subprocess().assert_outcomes(skipped=1)
    # env beats ini
    clean_env.setenv("PYTEST_COMMONS_REDIS_BACKEND", "local")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*forced*redis=local*"])
    # command line beats env
    pytester.runpytest_subprocess("--redis-backend=external").assert_outcomes(skipped=1)


def test_bad_option_values_are_usage_errors(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(REDIS_TEST)
    clean_env.setenv("PYTEST_COMMONS_REDIS_BACKEND", "dokker")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*redis_backend='dokker' (from $PYTEST_COMMONS_REDIS_BACKEND) is not one of auto, "
            "external, docker, local*"
        ]
    )
    clean_env.delenv("PYTEST_COMMONS_REDIS_BACKEND")
    result = pytester.runpytest_subprocess("--backend-order=local,cloud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*backend_order='local,cloud' (from --backend-order) names unknown backends*"]
    )
    # "auto" is a choice per service, not a backend to try in turn
    result = pytester.runpytest_subprocess("--backend-order=auto,local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*backend_order='auto,local' (from --backend-order) names unknown backends*"]
    )


def test_malformed_url_is_a_usage_error(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(PG_TEST)
    clean_env.setenv("PYTEST_COMMONS_POSTGRES_URL", "mysql://root@localhost/x")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*postgres_url='mysql://root@localhost/x' (from $PYTEST_COMMONS_POSTGRES_URL) is "
            "malformed: scheme must be postgresql://, got 'mysql'*",
        ]
    )
    result.stderr.no_fnmatch_line("*Traceback*")


def test_external_refused_credentials_fail_fast(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    postgres_service: ServiceHandle[PostgresInfo],
) -> None:
    info = postgres_service.info
    pytester.makepyfile(PG_TEST)
    clean_env.setenv(
        "PYTEST_COMMONS_POSTGRES_URL",
        f"postgresql://nosuchrole:topsecret@{info.host}:{info.port}/postgres",
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            # 'role … does not exist' on a trust server; a password-checking server (the local
            # one since issue 17) does not tell whether the role exists
            '*postgres (external backend): the server refused us:*"nosuchrole"*',
        ]
    )
    assert "topsecret" not in result.stdout.str() + result.stderr.str()


def test_server_dying_during_start_quotes_its_log(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    # a stand-in for a broken installation: the plugin's error path is what is under test
    bindir = pytester.path / "brokenbin"
    fake_binary(
        bindir,
        "redis-server",
        'echo "FATAL CONFIG FILE ERROR (simulated broken install)"\nexit 3\n',
    )
    pytester.makepyfile(REDIS_TEST)
    clean_env.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    result = pytester.runpytest_subprocess("--redis-backend=local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*redis (local backend): the server exited with code 3 during start*",
            # the run directory is gone after the run: the quoted log is a kept copy
            "*last lines of */failed-logs/redis-*.log:*",
            "*| FATAL CONFIG FILE ERROR (simulated broken install)*",
        ]
    )


def test_start_timeout_names_the_deadline(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    bindir = pytester.path / "hangbin"
    fake_binary(bindir, "redis-server", 'echo "starting but never listening"\nexec sleep 30\n')
    pytester.makepyfile(REDIS_TEST)
    clean_env.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    result = pytester.runpytest_subprocess("--redis-backend=local", "--service-start-timeout=1")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*redis (local backend): not ready after 1 s (last probe: *",
            "*| starting but never listening*",
        ]
    )


def test_xdist_shares_one_server_and_isolates(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    out = pytester.path / "out"
    out.mkdir()
    pytester.makepyfile(f"""
        import os, pytest

        @pytest.mark.parametrize("i", range(8))
        def test_pg(postgres, postgres_service, redis, i):
            with postgres.connect() as conn:
                conn.execute("create table t (x int)")
                conn.execute("insert into t values (%s)", (i,))
                assert conn.execute("select count(*) from t").fetchone()[0] == 1
                pid = conn.execute("select pg_backend_pid()").fetchone()[0]
                port = conn.execute("show port").fetchone()[0]
            assert redis.dbsize() == 0
            redis.set("k", i)
            worker = os.environ.get("PYTEST_XDIST_WORKER", "none")
            with open({str(out)!r} + f"/{{i}}", "w") as fh:
                fh.write(f"{{worker}} {{port}} {{postgres.name}}")
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    rows = [f.read_text().split() for f in out.iterdir()]
    assert {r[0] for r in rows} == {"gw0", "gw1"}
    assert len({r[1] for r in rows}) == 1, "both workers must use one server"
    assert len({r[2] for r in rows}) == 8, "every test gets its own database"
    result.stdout.fnmatch_lines(["*commons services*", "postgres    local*", "redis       local*"])


@pytest.mark.parametrize("plugin", ["pytest_commons.plugin.hooks", "commons"])
def test_xdist_loaded_by_module_name_with_autoload_off(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, plugin: str
) -> None:
    """With ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`` and ``-p xdist.plugin``, xdist is registered as
    ``xdist.plugin``, not ``xdist``: the workers still get the controller's run directory (they
    died with a KeyError, "node down: Not properly terminated", when it was looked up by name)
    and its seed (each worker drew its own)."""
    pytest.importorskip("xdist")
    if plugin == "commons" and tuple(int(p) for p in pytest.__version__.split(".")[:2]) < (8, 4):
        pytest.skip("`-p <entry point name>` with autoload off needs pytest 8.4")
    clean_env.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    out = pytester.path / "out"
    out.mkdir()
    pytester.makepyfile(f"""
        import os

        def test_where(redis_service, commons_seed):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            with open({str(out)!r} + "/" + worker, "w") as fh:
                fh.write(f"{{redis_service.instance.pid}} {{commons_seed}}")
    """)
    result = pytester.runpytest_subprocess(
        "-p", "xdist.plugin", "-p", plugin, "-n", "2", "--dist", "each", "--redis-backend=local"
    )
    result.assert_outcomes(passed=2)
    rows = {f.name: f.read_text().split() for f in out.iterdir()}
    assert set(rows) == {"gw0", "gw1"}
    assert rows["gw0"] == rows["gw1"], "one server and one seed for both workers"


def test_external_backend_touches_only_its_own(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    postgres_service: ServiceHandle[PostgresInfo],
    redis_service: ServiceHandle[RedisInfo],
) -> None:
    import psycopg
    import redis as redis_py

    pg = postgres_service.info
    with psycopg.connect(pg.dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS userdata")
        admin.execute("CREATE DATABASE userdata")
    with psycopg.connect(pg.with_db("userdata").dsn) as conn:
        conn.execute("create table keep (x int)")
        conn.execute("insert into keep values (42)")
    rinfo = redis_service.info
    # local servers have a per-run password now: the user's clients log in like ours
    # database 13: the outer run's own workers use 0 and 1 (a key in 0 is gw0's to flush)
    user_client = redis_py.Redis.from_url(rinfo.with_db(13).url)
    user_client.set("user:key", "precious")
    registry = redis_py.Redis.from_url(rinfo.with_db(0).url)  # where claims are kept
    busy = redis_py.Redis.from_url(rinfo.with_db(15).url)
    busy.set("user:other", "also precious")

    pytester.makepyfile(
        PG_TEST
        + REDIS_TEST
        + """
def test_redis_writes(redis):
    redis.set("mine", 1)
    assert redis.keys() == [b"mine"]
"""
    )
    clean_env.setenv("PYTEST_COMMONS_POSTGRES_URL", pg.url)
    clean_env.setenv("PYTEST_COMMONS_REDIS_URL", rinfo.with_db(13).url)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["postgres    external*", "redis       external*"])
    # the server is still running (never stopped), user data untouched, nothing of ours left
    with psycopg.connect(pg.dsn, autocommit=True) as admin:
        names = [r[0] for r in admin.execute("select datname from pg_database")]
        assert "userdata" in names
        assert not [
            n
            for n in names
            if n.startswith("pc_") and "gw" not in n and n.split("_")[1] != _own_prefix()
        ], names
    with psycopg.connect(pg.with_db("userdata").dsn) as conn:
        assert conn.execute("select x from keep").fetchall() == [(42,)]
    assert user_client.get("user:key") == b"precious"
    assert busy.get("user:other") == b"also precious"
    claims = registry.keys("pytest-commons:claim:*")
    registry.close()
    assert claims == [], "claims are released at the end"
    user_client.delete("user:key")
    busy.delete("user:other")
    with psycopg.connect(pg.dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE userdata")


def _own_prefix() -> str:
    # databases of the outer run itself are named pc_<pid>_…; anything else would be a leak
    return str(os.getpid())


def test_databases_made_ahead_are_fresh_distinct_and_dropped(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    postgres_service: ServiceHandle[PostgresInfo],
) -> None:
    """The next test's database is cloned in the background while a test runs: each test
    still gets its own empty clone of its schema's template, and the one made ahead for a
    test that never came is dropped at the end (checked on an external server, which
    outlives the inner run)."""
    import psycopg

    pg = postgres_service.info
    pytester.makeconftest(
        """
import pytest

@pytest.fixture(scope="session")
def postgres_schema():
    return "create table t (x int primary key)"
"""
    )
    pytester.makepyfile(
        """
import os

import pytest

@pytest.mark.parametrize("i", range(4))
def test_fresh(postgres, i):
    with postgres.connect() as conn:
        assert conn.execute("select count(*) from t").fetchone() == (0,)
        conn.execute("insert into t values (1)")
    with open(os.environ["NAMES_FILE"], "a") as fh:
        fh.write(postgres.name + "\\n")
"""
    )
    clean_env.setenv("PYTEST_COMMONS_POSTGRES_URL", pg.url)
    clean_env.setenv("NAMES_FILE", str(pytester.path / "names"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    used = (pytester.path / "names").read_text().split()
    assert len(set(used)) == 4, used
    with psycopg.connect(pg.dsn, autocommit=True) as admin:
        left = {r[0] for r in admin.execute("select datname from pg_database")}
    prefix = used[0].rsplit("_", 1)[0]
    assert not [n for n in left if n.startswith(prefix)], "made-ahead or test databases left"
