"""Fault injection suite for MySQL/MariaDB, run by test_fault_injection.py in an inner pytest
of its own: a real crash (SIGKILL of the server) and restart(); the tests after it work."""

from __future__ import annotations

import os
import signal
from typing import Any

import pymysql
import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.mysql.spec import MysqlInfo


@pytest.fixture(scope="session")
def mysql_schema() -> str:
    return "CREATE TABLE users (id int PRIMARY KEY AUTO_INCREMENT, email varchar(80));"


def test_before_the_crash(mysql: Any, mysql_tx: Any) -> None:
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("insert into users (email) values ('a@x.io')")
    with mysql_tx.cursor() as cur:
        cur.execute("select count(*) from users")
        assert cur.fetchone() == (0,)


def test_crash_then_restart(
    mysql_service: ServiceHandle[MysqlInfo], request: pytest.FixtureRequest
) -> None:
    if not mysql_service.owned:
        pytest.skip("fault injection needs a server the plugin owns")
    pid = mysql_service.instance.pid
    assert pid
    os.killpg(pid, signal.SIGKILL)  # a crash: no shutdown, sessions cut
    with pytest.raises(pymysql.err.OperationalError):
        request.getfixturevalue("mysql")  # while it is down: the admin session is lost
    mysql_service.restart()


def test_a_new_database_after_the_crash(mysql: Any) -> None:
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("select count(*) from users")
        assert cur.fetchone() == (0,)


def test_the_rollback_fixture_after_the_crash(mysql_tx: Any) -> None:
    with mysql_tx.cursor() as cur:
        cur.execute("insert into users (email) values ('b@x.io')")
        cur.execute("select count(*) from users")
        assert cur.fetchone() == (1,)


def test_and_again(mysql: Any, mysql_tx: Any) -> None:
    with mysql_tx.cursor() as cur:
        cur.execute("select count(*) from users")
        assert cur.fetchone() == (0,)
