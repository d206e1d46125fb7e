"""The sql_db plugin surface, through inner pytest runs: ids, --db-backends (flag, ini, env),
usage errors, markers, pytest-asyncio strict and auto modes, xdist."""

from __future__ import annotations

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("pytest_asyncio")

pytestmark = pytest.mark.usefixtures("clean_env")

SCHEMA = """
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

md = MetaData()
items = Table("items", md, Column("id", Integer, primary_key=True), Column("name", String(40)))

@pytest.fixture(scope="session")
def sql_schema():
    return md

def count(conn):
    return conn.execute(select(func.count()).select_from(items)).scalar_one()
"""

IDS = """
import pytest

@pytest.mark.backends("postgres", "sqlite")
def test_two(sql_db):
    pass

def test_default(sql_db):
    pass

@pytest.mark.backends("mysql")
def test_mysql_only(sql_db):
    pass
"""


def _collected(result: pytest.RunResult) -> list[str]:
    return sorted(line for line in result.outlines if "::" in line)


def test_ids_and_default_backends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ids=IDS)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert _collected(result) == [
        "test_ids.py::test_default[mysql]",
        "test_ids.py::test_default[postgres]",
        "test_ids.py::test_default[sqlite]",
        "test_ids.py::test_mysql_only[mysql]",
        "test_ids.py::test_two[postgres]",
        "test_ids.py::test_two[sqlite]",
    ]


def test_db_backends_flag_narrows(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ids=IDS)
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--db-backends=sqlite, MYSQL")
    assert _collected(result) == [
        "test_ids.py::test_default[mysql]",
        "test_ids.py::test_default[sqlite]",
        "test_ids.py::test_mysql_only[mysql]",
        "test_ids.py::test_two[sqlite]",
    ]


def test_db_backends_from_ini_and_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_ids=IDS)
    pytester.makeini("[pytest]\ndb_backends = postgres\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert _collected(result) == [
        "test_ids.py::test_default[postgres]",
        "test_ids.py::test_mysql_only[no-backend]",
        "test_ids.py::test_two[postgres]",
    ]
    monkeypatch.setenv("PYTEST_COMMONS_DB_BACKENDS", "sqlite")  # env beats ini
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert "test_ids.py::test_two[sqlite]" in _collected(result)
    assert "test_ids.py::test_two[postgres]" not in _collected(result)


def test_narrowed_out_test_is_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ids=IDS)
    result = pytester.runpytest_subprocess("-rs", "--db-backends=sqlite", "-k", "mysql_only")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*sql_db: none of this test's backends (mysql) is enabled by --db-backends=sqlite*"]
    )


def test_unknown_backend_on_the_command_line_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ids=IDS)
    result = pytester.runpytest_subprocess("--db-backends=postgres,redis")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--db-backends*unknown relational backend(s) 'redis';"
            " choose from postgres, mysql, sqlite"
        ]
    )


def test_unknown_backend_in_the_marker_names_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.backends("postgres", "oracle")
        def test_x(sql_db):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*test_bad.py::test_x: @pytest.mark.backends: unknown relational backend(s) 'oracle'*"]
    )


def test_service_markers_select_by_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ids=IDS)
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "-m", "not postgres and not mysql"
    )
    assert _collected(result) == [
        "test_ids.py::test_default[sqlite]",
        "test_ids.py::test_two[sqlite]",
    ]
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-m", "postgres")
    assert _collected(result) == [
        "test_ids.py::test_default[postgres]",
        "test_ids.py::test_two[postgres]",
    ]


ASYNC_TESTS = """
import pytest
from conftest import count, items

{mark}
@pytest.mark.backends("postgres", "sqlite")
@pytest.mark.parametrize("n", range(3))
async def test_async(sql_db, n):
    session = sql_db.async_session
    assert await session.run_sync(lambda s: count(s)) == 0
    await session.execute(items.insert().values(name="x"))
    await session.commit()
    assert await session.run_sync(lambda s: count(s)) == 1

{mark}
@pytest.mark.backends("sqlite")
async def test_async_engine_is_usable_in_this_loop(sql_db):
    async with sql_db.async_engine.connect() as conn:
        assert await conn.run_sync(lambda c: count(c)) == 0

@pytest.mark.backends("postgres", "sqlite")
def test_sync_in_between(sql_db):
    assert count(sql_db.session) == 0
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pytest_asyncio_modes(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeconftest(SCHEMA)
    mark = "@pytest.mark.asyncio" if mode == "strict" else ""
    pytester.makepyfile(test_async=ASYNC_TESTS.format(mark=mark))
    result = pytester.runpytest_subprocess(
        "-p", "asyncio", "-o", f"asyncio_mode={mode}", "-W", "error::RuntimeWarning", "-q"
    )
    result.assert_outcomes(passed=9)
    output = result.stdout.str() + result.stderr.str()
    for sign in ("different loop", "Event loop is closed", "never awaited", "nclosed connection"):
        assert sign not in output


def test_xdist_two_workers(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest(SCHEMA)
    pytester.makepyfile(
        test_x="""
        import pytest
        from conftest import count, items

        @pytest.mark.backends("postgres", "sqlite")
        @pytest.mark.parametrize("n", range(6))
        def test_commit(sql_db, n):
            assert count(sql_db.session) == 0
            sql_db.session.execute(items.insert().values(name=str(n)))
            sql_db.session.commit()
            assert count(sql_db.session) == 1
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=12)


def test_a_module_overriding_sql_schema_gets_its_own_database(pytester: pytest.Pytester) -> None:
    """The hook is session-scoped, yet a module's override applies to that module's tests
    even when another module's tests made the default database first (as for postgres)."""
    pytest.importorskip("sqlalchemy")
    pytester.makepyfile(
        test_a_plain="""
        import pytest
        import sqlalchemy as sa

        @pytest.mark.backends("sqlite", "postgres")
        def test_no_tables(sql_db):
            assert sa.inspect(sql_db.connection).get_table_names() == []
        """,
        test_b_schema="""
        import pytest
        import sqlalchemy as sa

        metadata = sa.MetaData()
        sa.Table("notes", metadata, sa.Column("id", sa.Integer, primary_key=True))

        @pytest.fixture(scope="session")
        def sql_schema():
            return metadata

        @pytest.mark.backends("sqlite", "postgres")
        def test_notes_table(sql_db):
            assert sa.inspect(sql_db.connection).get_table_names() == ["notes"]
        """,
        test_c_plain="""
        import pytest
        import sqlalchemy as sa

        @pytest.mark.backends("sqlite", "postgres")
        def test_still_no_tables(sql_db):
            assert sa.inspect(sql_db.connection).get_table_names() == []
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=6)
