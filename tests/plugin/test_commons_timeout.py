"""Hang protection (--commons-timeout): a test stuck on a service fails after the limit with what
the services were doing; the ini/env twins and the marker; pytest-timeout takes precedence.

The limits are seconds long although the stuck tests would wait forever: setup (a template, a
database clone) must fit in them on a loaded 2-core machine."""

from __future__ import annotations

import pytest

from tests.plugin.test_kafka_plugin import use_engine  # imported before pytester moves HOME

pytest.importorskip("psycopg")
pytest.importorskip("redis")

pytestmark = pytest.mark.usefixtures("clean_env")

STUCK = """
import psycopg
import pytest

@pytest.fixture(scope="session")
def postgres_schema():
    return "CREATE TABLE accounts (id int PRIMARY KEY, balance int)"

def test_waits_for_a_row_lock(postgres):
    with postgres.connect() as holder, postgres.connect() as waiter:
        holder.execute("INSERT INTO accounts VALUES (1, 10)")
        holder.commit()
        holder.execute("UPDATE accounts SET balance = 0 WHERE id = 1")   # holds the row lock
        waiter.execute("UPDATE accounts SET balance = 5 WHERE id = 1")   # waits for it

def test_blocks_on_an_empty_list(redis):
    redis.client_setname("the-stuck-one")
    redis.blpop("nothing-comes", 0)

def test_sleeps_in_mysql_after_calling_mockserver(mysql, mockserver_url):
    import httpx
    httpx.get(mockserver_url + "/partner/prices/7")   # recorded by MockServer (a 404)
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT SLEEP(30)")

@pytest.mark.commons_timeout(0.1)
def test_no_service_is_not_limited():
    import time
    time.sleep(0.5)
"""


def test_fires_with_what_the_services_were_doing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stuck=STUCK)
    result = pytester.runpytest_subprocess(
        "--commons-timeout=5", "-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:timeout"
    )
    result.assert_outcomes(failed=3, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*CommonsTimeout: commons: the test's call took longer than 5 s (--commons-timeout)",
            "*what the services were doing:",
            "*postgres (local, *",
            "*pg_stat_activity (not idle):",
            "*active*Lock:transactionid*UPDATE accounts SET balance = 5 WHERE id = 1*",
            "*locks waited for:",
            "*ShareLock*",
        ]
    )
    result.stdout.fnmatch_lines(["*redis (local, *", "*CLIENT LIST:", "*blpop*the-stuck-one*"])
    result.stdout.fnmatch_lines(
        [
            "*mysql (local, *",
            "*processlist (not sleeping):",
            "*Query*SELECT SLEEP(30)*",
            "*mockserver (*",
            "*recorded requests (1, the last 20):",
            "*GET*/partner/prices/7*",
        ]
    )


KAFKA_STUCK = """
def test_waits_for_records_that_never_come(kafka):
    topic = kafka.topic("quiet")
    consumer = kafka.consumer(group_id=kafka.group_id() + "-stuck")
    consumer.subscribe([topic])
    while True:
        consumer.poll(0.2)
"""


def test_kafka_shows_its_consumer_groups(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """A test stuck in a consumer loop: the report shows the group, its state, its member and
    the topic it was given (on Apache Kafka: Tansu 0.6 lists no groups)."""
    pytest.importorskip("confluent_kafka")
    use_engine(clean_env, "apache")
    pytester.makepyfile(test_kafka_stuck=KAFKA_STUCK)
    result = pytester.runpytest_subprocess(
        "--commons-timeout=15", "-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:timeout"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*what the services were doing:",
            "*kafka (local, *",
            "*consumer groups:",
            "*-stuck*STABLE*1*quiet*",
        ]
    )


def test_ini_env_and_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.commons_timeout(3)
        def test_marked(redis):
            redis.blpop("nothing", 0)

        def test_from_config(redis):
            redis.blpop("nothing", 0)
        """
    )
    pytester.makeini("[pytest]\ncommons_timeout = 4\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*call took longer than 3 s*", "*call took longer than 4 s*"])


def test_bad_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(redis):\n    pass\n")
    result = pytester.runpytest_subprocess("--commons-timeout=soon", "-p", "no:asyncio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*commons_timeout='soon' is not a number of seconds*"])


@pytest.mark.parametrize("load", ["autoload", "-p pytest_timeout"])
def test_pytest_timeout_takes_precedence(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, load: str
) -> None:
    """Whether pytest-timeout came as an entry point (named ``timeout``) or with autoload off
    and ``-p pytest_timeout`` (named ``pytest_timeout``)."""
    pytest.importorskip("pytest_timeout")
    extra: list[str] = []
    if load != "autoload":
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        extra = ["-p", "pytest_timeout", "-p", "pytest_commons.plugin.hooks"]
    pytester.makepyfile(
        test_both="""
        def test_both(redis):
            redis.blpop("nothing", 0)
        """
    )
    result = pytester.runpytest_subprocess(
        *extra,
        "--commons-timeout=0.2",
        # pytest-timeout's limit covers the setup too, the server's start included (over 1 s
        # once in a CI run on a slow, busy machine): the test blocks until this one fires
        "--timeout=5",
        "--timeout-method=signal",
        "-p",
        "no:asyncio",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>5.0s) from pytest-timeout*"])
    assert "CommonsTimeout" not in result.stdout.str()
