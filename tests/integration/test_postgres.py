"""PostgreSQL against a real server: isolation, schema template, rollback fixture, faults."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql
import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.postgres.fixtures import PostgresDatabase
from pytest_commons.services.postgres.spec import PostgresInfo
from tests.helpers import fixture_file


@pytest.fixture(scope="session")
def postgres_schema() -> Path:
    return fixture_file("sql", "postgres", "users.sql")


@pytest.mark.parametrize("email", ["a@x.io", "b@x.io"])
def test_each_test_gets_a_fresh_database_from_the_template(
    postgres: PostgresDatabase, email: str
) -> None:
    with postgres.connect() as conn:
        assert conn.execute("select count(*) from users").fetchone() == (0,)
        conn.execute("insert into users (email) values (%s)", (email,))
        conn.commit()
        assert conn.execute("select count(*) from users").fetchone() == (1,)
    assert postgres.name.startswith("pc_")
    assert postgres.url.endswith("/" + postgres.name)


def test_database_urls_work_with_other_clients(postgres: PostgresDatabase) -> None:
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("select current_database()").fetchone() == (postgres.name,)
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("select current_database()").fetchone() == (postgres.name,)


def test_rollback_fixture_commit_stays_inside(postgres_tx: psycopg.Connection[Any]) -> None:
    postgres_tx.execute("insert into users (email) values ('tx@x.io')")
    postgres_tx.commit()  # what application code does
    with postgres_tx.transaction():
        postgres_tx.execute("insert into users (email) values ('nested@x.io')")
    assert postgres_tx.execute("select count(*) from users").fetchone() == (2,)


def test_rollback_fixture_app_rollback_keeps_outer(postgres_tx: psycopg.Connection[Any]) -> None:
    postgres_tx.execute("insert into users (email) values ('kept@x.io')")
    postgres_tx.commit()
    postgres_tx.execute("insert into users (email) values ('dropped@x.io')")
    postgres_tx.rollback()
    emails = [r[0] for r in postgres_tx.execute("select email from users")]
    assert emails == ["kept@x.io"]


def test_rollback_fixture_survives_an_error(postgres_tx: psycopg.Connection[Any]) -> None:
    postgres_tx.execute("insert into users (email) values ('dup@x.io')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        postgres_tx.execute("insert into users (email) values ('dup@x.io')")
    postgres_tx.rollback()
    assert postgres_tx.execute("select count(*) from users").fetchone() == (0,)


def test_a_local_server_keeps_its_shared_memory_in_its_data_directory(
    postgres: PostgresDatabase, postgres_service: ServiceHandle[PostgresInfo]
) -> None:
    # with the default (posix), every killed server left a /dev/shm/PostgreSQL.* segment for
    # good; as files in the data directory they go with it
    if postgres_service.backend != "local":
        pytest.skip("about the local backend: its server settings")
    with postgres.connect() as conn:
        row = conn.execute("SHOW dynamic_shared_memory_type").fetchone()
    assert row == ("mmap",)


def test_a_local_server_has_template1_catalogs_cache_written_for_the_clones(
    postgres: PostgresDatabase, postgres_service: ServiceHandle[PostgresInfo]
) -> None:
    # the start sets the password from template1, whose relation-cache init file every clone
    # then carries: a test's first connect loads the catalogs' cache instead of building it
    # (≈3 ms of the server's CPU per test, what xdist's workers share the cores with)
    if postgres_service.backend != "local":
        pytest.skip("about the local backend's start")
    with postgres.connect() as conn:
        files = {row[0] for row in conn.execute("SELECT pg_ls_dir('base/1')")}
    assert "pg_internal.init" in files


def test_handle_reports_backend_and_version(postgres_service: ServiceHandle[PostgresInfo]) -> None:
    assert postgres_service.backend in ("local", "docker", "external")
    assert postgres_service.version[:2].isdigit()
    assert postgres_service.startup_seconds >= 0


@pytest.fixture
def role_with_password(postgres_service: ServiceHandle[PostgresInfo]) -> Iterator[PostgresInfo]:
    """A login role with a real, non-empty password on the run's server (the local backend's
    own login has none, so a masking check on it would pass with masking turned off)."""
    suffix = uuid.uuid4().hex[:8]
    role, password = f"pc_masked_{suffix}", f"pw-{suffix}-S3cret"
    with psycopg.connect(postgres_service.info.dsn, autocommit=True) as admin:
        admin.execute(
            psycopg.sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
            )
        )
    try:
        yield dataclasses.replace(postgres_service.info, user=role, password=password)
    finally:
        with psycopg.connect(postgres_service.info.dsn, autocommit=True) as admin:
            admin.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(role)))


def test_a_real_password_is_masked_in_every_repr(
    postgres_service: ServiceHandle[PostgresInfo], role_with_password: PostgresInfo
) -> None:
    info = role_with_password
    with psycopg.connect(info.dsn) as conn:  # the password is the one the server knows
        assert conn.execute("select current_user").fetchone() == (info.user,)
    instance = dataclasses.replace(postgres_service.instance, info=info.to_dict())
    handle = ServiceHandle(postgres_service.spec, postgres_service._backend, instance, None)
    assert handle.info.password == info.password
    database = PostgresDatabase(handle, "pc_any")
    for text in (repr(handle), repr(info), str(info), info.describe(), repr(database)):
        assert info.password not in text
    assert "password='***'" in repr(handle)
    assert info.password in info.url  # drivers still get it


MASKED_SUITE = """
def test_uses_the_server(postgres, postgres_service):
    with postgres.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)

def test_fails_showing_its_locals(postgres, postgres_service):
    info = postgres_service.info
    assert info is None, repr(postgres_service)
"""


def test_a_real_password_stays_out_of_reports_and_failures(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, role_with_password: PostgresInfo
) -> None:
    """An inner run against the server as an external URL that carries a password: the
    header, verbose lines, the failure (with ``--showlocals``) and the services summary."""
    pytester.makepyfile(MASKED_SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-v", "-l", "-rA", f"--postgres-url={role_with_password.url}"
    )
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "commons services" in output
    assert role_with_password.user in output  # the report does name the login...
    assert "password='***'" in output
    assert role_with_password.password not in output  # ...never its password
