"""Who may connect to the local servers (issue 17, item 9): each run gets random credentials,
a connection without them is refused, file-writing SQL is confined, server logs are private,
and the password shows up in no report.

One inner run starts all three password-protected local servers; its tests check the refusals
from the inside and write what the outer test checks (passwords, log paths) to a file.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("clean_env", "outer_services_settled")

INNER = """
import json, os
from pathlib import Path

import pytest

OUT = Path({out!r})


def _note(service, handle):
    import stat

    # the server log is the owner's alone, and holds no password
    log = Path(handle.instance.log_path)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600, oct(log.stat().st_mode)
    assert handle.info.password not in log.read_text(errors="replace")
    with OUT.open("a") as fh:
        fh.write(json.dumps({{"service": service, "password": handle.info.password,
                              "log": handle.instance.log_path}}) + "\\n")
    print(repr(handle), repr(handle.info))  # reprs must mask the password


def test_postgres_needs_the_runs_password(postgres_service):
    import psycopg

    info = postgres_service.info
    assert len(info.password) >= 16
    _note("postgres", postgres_service)
    base = dict(host=info.host, port=info.port, dbname="postgres", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(user="postgres", **base)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(user="postgres", password="not-the-password", **base)
    # no role logs in without a password (no trust line for TCP)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(user="nobody", **base)
    with psycopg.connect(info.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_mysql_needs_the_runs_password_and_confines_file_writes(mysql_service, tmp_path):
    import pymysql

    info = mysql_service.info
    assert len(info.password) >= 16
    _note("mysql", mysql_service)
    for password in ("", "not-the-password"):
        with pytest.raises(pymysql.err.OperationalError) as caught:
            pymysql.connect(host=info.host, port=info.port, user="root", password=password,
                            ssl_disabled=True, connect_timeout=5)
        assert caught.value.args[0] == 1045  # access denied
    conn = mysql_service.spec.connect(info)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT User, Host, Priv FROM mysql.global_priv")  # MariaDB
            open_accounts = []
            for user, host, priv in cur.fetchall():
                priv = json.loads(priv)
                no_password = priv.get("plugin", "mysql_native_password") in (
                    "mysql_native_password", ""
                ) and not priv.get("authentication_string")
                if no_password and not priv.get("account_locked"):
                    open_accounts.append(f"{{user}}@{{host}}")
            assert open_accounts == []  # no account without a password
            target = tmp_path / "written-by-the-server.txt"
            with pytest.raises(pymysql.err.MySQLError) as caught:
                cur.execute(f"SELECT 'x' INTO OUTFILE '{{target}}'")
            assert caught.value.args[0] == 1290, caught.value  # --secure-file-priv
            assert not target.exists()
    finally:
        conn.close()


def test_redis_needs_the_runs_password(redis_service):
    import redis

    info = redis_service.info
    assert len(info.password) >= 16
    _note("redis", redis_service)
    anonymous = redis.Redis(host=info.host, port=info.port, socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    wrong = redis.Redis(host=info.host, port=info.port, password="nope", socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()
    assert redis_service.spec.client(info).ping()
"""


@pytest.mark.reliability
def test_local_servers_refuse_connections_without_the_runs_password(
    pytester: pytest.Pytester,
) -> None:
    out = pytester.path / "seen.jsonl"
    pytester.makepyfile(INNER.format(out=str(out)))
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-s",
        "-rA",
        "--postgres-backend=local",
        "--mysql-backend=local",
        "--redis-backend=local",
    )
    result.assert_outcomes(passed=3)
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(s["service"] for s in seen) == ["mysql", "postgres", "redis"]
    passwords = {s["password"] for s in seen}
    assert len(passwords) == 3, "one password per server"
    text = result.stdout.str() + result.stderr.str()
    assert "commons services" in text  # the summary was printed …
    for password in passwords:  # … and neither it, the header nor a repr shows a password
        assert password not in text
    for s in seen:  # the mode was checked inside, while the run directory existed
        assert s["log"].endswith("server.log")


def test_a_run_password_is_not_baked_into_the_cache(pytester: pytest.Pytester) -> None:
    """Two runs from the same cached cluster get different passwords, and the first run's
    password does not open the second run's server."""
    out = pytester.path / "pw.txt"
    pytester.makepyfile(
        f"""
import psycopg, pytest
from pathlib import Path

def test_pg(postgres_service):
    info = postgres_service.info
    out = Path({str(out)!r})
    if out.exists():
        old = out.read_text()
        assert old != info.password
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host=info.host, port=info.port, user="postgres",
                            password=old, dbname="postgres")
    out.write_text(info.password)
"""
    )
    for _ in range(2):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--postgres-backend=local")
        result.assert_outcomes(passed=1)


DOCKER_INNER = """
import pytest

def test_postgres(postgres_service):
    import psycopg

    info = postgres_service.info
    assert postgres_service.backend == "docker"
    assert len(info.password) >= 16 and info.password != "test"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=info.host, port=info.port, user=info.user, password="test",
                        dbname=info.dbname, connect_timeout=5)
    with psycopg.connect(info.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

def test_mysql(mysql_service):
    import pymysql

    info = mysql_service.info
    assert mysql_service.backend == "docker"
    assert len(info.password) >= 16 and info.password != "commons-root"
    with pytest.raises(pymysql.err.OperationalError) as caught:
        pymysql.connect(host=info.host, port=info.port, user="root", password="commons-root",
                        ssl_disabled=True, connect_timeout=5)
    assert caught.value.args[0] == 1045  # access denied
    mysql_service.spec.connect(info).close()

def test_redis(redis_service):
    import redis

    info = redis_service.info
    assert redis_service.backend == "docker"
    assert len(info.password) >= 16 and info.password != "commons"
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=info.host, port=info.port, password="commons", socket_timeout=5).ping()
    assert redis_service.spec.client(info).ping()
"""


@pytest.mark.reliability
def test_docker_containers_get_the_runs_password_not_the_images(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """The images' fixed credentials (``test``, ``commons-root``, ``commons``) are replaced by
    a random password per run once the container answers; the fixed ones are refused."""
    from tests.integration.test_docker_backend import require_local_images

    for key, value in require_local_images("postgres", "mysql", "redis").items():
        clean_env.setenv(key, value)
    pytester.makepyfile(DOCKER_INNER)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--postgres-backend=docker",
        "--mysql-backend=docker",
        "--redis-backend=docker",
    )
    result.assert_outcomes(passed=3)
