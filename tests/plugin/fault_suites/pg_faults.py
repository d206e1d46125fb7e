"""Fault injection suite, run by test_fault_injection.py in an inner pytest of its own."""

from __future__ import annotations

import psycopg
import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.postgres.fixtures import PostgresDatabase
from pytest_commons.services.postgres.spec import PostgresInfo


@pytest.fixture(scope="session")
def postgres_schema() -> str:
    return "CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL);"


def test_restart_keeps_data_and_port(
    postgres: PostgresDatabase, postgres_service: ServiceHandle[PostgresInfo]
) -> None:
    if not postgres_service.owned:
        pytest.skip("fault injection needs a server the plugin owns")
    with postgres.connect() as conn:
        conn.execute("insert into users (email) values ('durable@x.io')")
        conn.commit()
    port = postgres_service.info.port
    postgres_service.restart()
    assert postgres_service.info.port == port
    with postgres.connect() as conn:
        assert conn.execute("select email from users").fetchall() == [("durable@x.io",)]


def test_stopped_server_refuses_then_comes_back(
    postgres: PostgresDatabase, postgres_service: ServiceHandle[PostgresInfo]
) -> None:
    if not postgres_service.owned:
        pytest.skip("fault injection needs a server the plugin owns")
    postgres_service.stop()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgres.dsn, connect_timeout=2)
    finally:
        postgres_service.start()
    with postgres.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_paused_server_times_out_then_resumes(
    postgres: PostgresDatabase, postgres_service: ServiceHandle[PostgresInfo]
) -> None:
    if not postgres_service.owned:
        pytest.skip("fault injection needs a server the plugin owns")
    postgres_service.pause()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgres.dsn, connect_timeout=1)
    finally:
        postgres_service.resume()
    with postgres.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert "database system is ready" in postgres_service.logs() or postgres_service.logs() == ""
