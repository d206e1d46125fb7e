"""postgres_tx through inner runs: a test that closes, breaks or commits behind the fixture's
back does not break, or leak into, the tests after it (issue 17 items 6 and 7)."""

from __future__ import annotations

import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.postgres.spec import PostgresInfo

pytestmark = pytest.mark.usefixtures("clean_env")

SCHEMA = """
import pytest

@pytest.fixture(scope="session")
def postgres_schema():
    return "create table t (x int)"
"""


def _run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pg: ServiceHandle[PostgresInfo],
    tests: str,
) -> pytest.RunResult:
    pytester.makeconftest(SCHEMA)
    pytester.makepyfile(tests)
    # the outer run's server as an external one: no start-up, and it outlives the inner run
    monkeypatch.setenv("PYTEST_COMMONS_POSTGRES_URL", pg.info.url)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")


def test_a_closed_or_broken_connection_gets_a_fresh_database(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    postgres_service: ServiceHandle[PostgresInfo],
) -> None:
    result = _run(
        pytester,
        clean_env,
        postgres_service,
        """
def test_closes(postgres_tx):
    postgres_tx.execute("insert into t values (1)")
    postgres_tx.close()

def test_after_close(postgres_tx):
    assert postgres_tx.execute("select count(*) from t").fetchone() == (0,)

def test_breaks(postgres_tx):
    import psycopg, pytest
    with pytest.raises(psycopg.OperationalError):
        postgres_tx.execute("select pg_terminate_backend(pg_backend_pid())")

def test_after_break(postgres_tx):
    assert postgres_tx.execute("select count(*) from t").fetchone() == (0,)
""",
    )
    result.assert_outcomes(passed=4)


def test_a_raw_commit_fails_that_test_and_leaks_nothing(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    postgres_service: ServiceHandle[PostgresInfo],
) -> None:
    result = _run(
        pytester,
        clean_env,
        postgres_service,
        """
def test_commits_raw(postgres_tx):
    postgres_tx.execute("insert into t values (1)")
    postgres_tx.execute("select pg_advisory_lock(4217)")
    postgres_tx.execute("COMMIT")
    postgres_tx.execute("insert into t values (2)")

def test_after(postgres_tx):
    assert postgres_tx.execute("select count(*) from t").fetchone() == (0,)
    assert postgres_tx.execute("select pg_try_advisory_lock(4217)").fetchone() == (True,)

def test_app_commit_is_fine(postgres_tx):
    postgres_tx.execute("insert into t values (3)")
    postgres_tx.commit()

def test_after_app_commit(postgres_tx):
    assert postgres_tx.execute("select count(*) from t").fetchone() == (0,)
""",
    )
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_commits_raw*",
            "*postgres_tx: the test ended the fixture's transaction itself (a raw COMMIT*",
        ]
    )
    # the message alone, not a traceback into the plugin's fixture code
    assert "pytest_commons/services/postgres/fixtures.py" not in result.stdout.str()
