"""Connection info types, URL parsing and masking (no servers)."""

from __future__ import annotations

import pytest

from pytest_commons.errors import ServiceStartError, ServiceUnavailable
from pytest_commons.services.base import mask_url
from pytest_commons.services.postgres.spec import PostgresInfo, PostgresSpec, quote_ident
from pytest_commons.services.redis.spec import RedisInfo, RedisSpec


def test_postgres_repr_masks_password() -> None:
    info = PostgresInfo(host="127.0.0.1", port=5432, user="u", password="s3cret", dbname="d")
    assert "s3cret" not in repr(info)
    assert "s3cret" not in str(info)
    assert "password='***'" in repr(info)
    assert "s3cret" in info.url  # the URL itself must carry it for drivers
    # only the secret is masked: the rest stays readable, an empty password shows as empty
    assert repr(info) == (
        "PostgresInfo(host='127.0.0.1', port=5432, user='u', password='***', dbname='d')"
    )
    assert "password=''" in repr(PostgresInfo(host="h", port=1))


def test_redis_repr_masks_password() -> None:
    info = RedisInfo(host="127.0.0.1", port=6379, password="hunter2", db=3)
    assert "hunter2" not in repr(info)
    assert info.url == "redis://:hunter2@127.0.0.1:6379/3"


def test_mask_url() -> None:
    assert mask_url("postgresql://u:pw@h:1/d") == "postgresql://u:***@h:1/d"
    assert mask_url("redis://h:1/0") == "redis://h:1/0"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://alice:p%40ss@db.local:6543/app",
            PostgresInfo(host="db.local", port=6543, user="alice", password="p@ss", dbname="app"),
        ),
        ("postgres://h", PostgresInfo(host="h", port=5432)),
    ],
)
def test_postgres_parse_url(url: str, expected: PostgresInfo) -> None:
    assert PostgresSpec().parse_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://h/db", "scheme"),
        ("postgresql://:5432/x", "no host"),
        ("postgresql://h:99999/x", "port"),
    ],
)
def test_postgres_parse_url_errors(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        PostgresSpec().parse_url(url)


def test_redis_parse_url() -> None:
    info = RedisSpec().parse_url("rediss://user:pw@cache:6380/4")
    assert (info.host, info.port, info.username, info.password, info.db, info.ssl) == (
        "cache",
        6380,
        "user",
        "pw",
        4,
        True,
    )
    with pytest.raises(ValueError, match="database number"):
        RedisSpec().parse_url("redis://h/abc")


def test_dsn_quotes_values() -> None:
    info = PostgresInfo(host="h", port=1, user="o'neil", password="a b\\c")
    assert "user='o\\'neil'" in info.dsn
    assert "password='a b\\\\c'" in info.dsn


def test_quote_ident_refuses_odd_names() -> None:
    assert quote_ident("pc_1_gw0_3") == '"pc_1_gw0_3"'
    with pytest.raises(ValueError):
        quote_ident('x"; DROP DATABASE y; --')


def test_error_messages_name_service_backend_and_remedy() -> None:
    err = ServiceStartError(
        "postgres",
        "local",
        "the server exited with code 1 during start",
        log_tail="FATAL: boom",
        log_path="/x/server.log",
        remedy="apt-get install postgresql",
    )
    text = str(err)
    assert text.startswith("postgres (local backend): the server exited")
    assert "| FATAL: boom" in text
    assert "/x/server.log" in text
    assert "remedy: apt-get install postgresql" in text
    unavailable = ServiceUnavailable(
        "redis", [("external", "$X is not set"), ("local", "not installed")]
    )
    assert "- external: $X is not set" in str(unavailable)
    assert "- local: not installed" in str(unavailable)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.255.0.9",
        "::1",
        "[::1]",
        "localhost",
        "LOCALHOST",
        "localhost.localdomain",
        "s3.localhost",
        "a.b.LocalHost",
    ],
)
def test_loopback_hosts_are_accepted(host: str) -> None:
    from pytest_commons.services.aws.spec import check_endpoint_host, is_loopback

    assert is_loopback(host)
    check_endpoint_host(host, None)


@pytest.mark.parametrize(
    "host",
    [
        "evillocalhost",  # a suffix match without the dot would accept it
        "notlocalhost",
        "localhostx",
        "localhost.evil.example",
        "localhost.localdomain.evil.example",
        "xlocalhost.localdomain",
        "127.0.0.1.nip.io",
        "128.0.0.1",
        "10.0.0.5",
        "0.0.0.0",
        "::2",
        "::",
        "",
    ],
)
def test_hosts_that_only_look_local_are_refused(host: str) -> None:
    from pytest_commons.errors import ConfigError
    from pytest_commons.services.aws.spec import check_endpoint_host, is_loopback

    assert not is_loopback(host)
    with pytest.raises(ConfigError, match="not loopback"):
        check_endpoint_host(host, None)
    if host:
        check_endpoint_host(host, f"other, {host.upper()}")  # unless listed (case-insensitive)


def test_a_process_has_ended_once_it_is_a_zombie_or_gone() -> None:
    # the local Postgres start waits on it for template1's backend: a backend leaves the
    # server's process array before its process ends
    import subprocess
    import time

    from pytest_commons.core.childenv import child_env
    from pytest_commons.services.postgres.spec import _process_ended

    running = subprocess.Popen(["sleep", "30"], env=child_env())
    try:
        assert not _process_ended(running.pid)
    finally:
        running.kill()
    deadline = time.monotonic() + 10
    while not _process_ended(running.pid):  # a zombie until it is reaped below
        assert time.monotonic() < deadline, "a killed process never ended"
        time.sleep(0.001)
    running.wait()
    assert _process_ended(running.pid)  # reaped: gone
