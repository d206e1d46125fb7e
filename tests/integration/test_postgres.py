"""PostgreSQL against a real server: isolation, schema template, rollback fixture, faults."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_commons.fixtures.postgres import PostgresDatabase
from pytest_commons.registry import ServiceHandle
from pytest_commons.services.postgres import PostgresInfo


@pytest.fixture(scope="session")
def postgres_schema() -> str:
    return "CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL);"


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


def test_rollback_fixture_sees_nothing_from_before(postgres_tx: psycopg.Connection[Any]) -> None:
    assert postgres_tx.execute("select count(*) from users").fetchone() == (0,)


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


def test_rollback_fixture_after_error_test(postgres_tx: psycopg.Connection[Any]) -> None:
    assert postgres_tx.execute("select 1").fetchone() == (1,)


def test_handle_reports_backend_and_version(postgres_service: ServiceHandle[PostgresInfo]) -> None:
    assert postgres_service.backend in ("local", "docker", "external")
    assert postgres_service.version[:2].isdigit()
    assert postgres_service.startup_seconds >= 0
    assert (
        "password" not in repr(postgres_service)
        or "***" in repr(postgres_service)
        or (postgres_service.info.password == "")
    )
