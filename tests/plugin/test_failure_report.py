"""A failing test explains itself (a ``commons: <service>`` report section per service it used),
``--keep-failed`` keeps what it made, and ``--commons-leaks`` reports connections a test left
open. Inner runs against real servers (local backend)."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import commons_cli
from tests.plugin.test_kafka_plugin import use_engine  # imported before pytester moves HOME

pytest.importorskip("psycopg")
pytest.importorskip("pymysql")
pytest.importorskip("redis")
pytest.importorskip("httpx")

pytestmark = pytest.mark.usefixtures("clean_env")

LOCAL = [
    "-p",
    "no:cacheprovider",
    "--postgres-backend=local",
    "--mysql-backend=local",
    "--redis-backend=local",
    "--mockserver-backend=local",
    "--kafka-backend=local",
    "--aws-backend=local",
    "-p",
    "no:asyncio",
]

FAILING = """
import httpx
import pytest

@pytest.fixture(scope="session")
def passwords(postgres_service, mysql_service, redis_service):
    yield
    services = (postgres_service, mysql_service, redis_service)
    with open("passwords", "w") as fh:
        fh.write("\\n".join(s.info.password for s in services))

def test_postgres_fails(postgres):
    with postgres.connect() as conn:
        conn.execute("DO $$ BEGIN RAISE WARNING 'said by the failing test %', 42; END $$")
    assert False, "the application wrote the wrong thing"

def test_mysql_fails(mysql):
    assert False

def test_redis_fails(redis):
    redis.set("a", 1)
    redis.set("b", 2)
    assert False

def test_mockserver_fails(mockserver_url):
    httpx.put(mockserver_url + "/mockserver/expectation", json={
        "httpRequest": {"method": "POST", "path": "/orders", "headers": {"X-Tenant": ["acme"]}},
        "httpResponse": {"statusCode": 201},
    }).raise_for_status()
    httpx.put(mockserver_url + "/mockserver/expectation", json={
        "httpRequest": {"method": "GET", "path": "/health"},
        "httpResponse": {"statusCode": 200},
    }).raise_for_status()
    assert httpx.get(mockserver_url + "/health").status_code == 200   # matched: not listed
    httpx.post(mockserver_url + "/orders", headers={"X-Tenant": "other"}, json={})
    assert False

def test_kafka_fails(kafka):
    topic = kafka.topic("orders")
    for value in (b"one", b"two", b"three"):   # one batch each (Tansu's watermark: parity.md)
        kafka.produce(topic, [value])
    assert False

def test_aws_fails(aws):
    aws.client("s3").create_bucket(Bucket="orders-archive")
    assert False

def test_passes(postgres, redis, mysql, passwords):
    pass
"""


def test_a_failing_test_reports_each_service_it_used(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    use_engine(clean_env, "tansu")
    pytester.makepyfile(test_report=FAILING)
    result = pytester.runpytest_subprocess(*LOCAL, "-rP", "-p", "no:randomly")
    result.assert_outcomes(failed=6, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*- commons: postgres -*",
            "postgres (local, *@127.0.0.1:*, *)",
            "database pc_*: dropped after the test (--keep-failed keeps it)",
            "  connect: psql 'postgresql://*@127.0.0.1:*/pc_*' (the password: *",
            "the server logged while the test ran (*server.log):",
            "*WARNING:  said by the failing test 42",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*- commons: mysql -*",
            "database pc_*: dropped after the test (--keep-failed keeps it)",
            "  connect: mysql -h 127.0.0.1 -P * -u * pc_*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*- commons: redis -*", "database *: 2 key(s) now*", "  look: redis-cli -h 127.0.0.1 *"]
    )
    result.stdout.fnmatch_lines(
        [
            "*- commons: mockserver -*",
            "2 request(s) received, 2 active expectation(s)",
            "1 request(s) matched no expectation:",
            "  POST /orders",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*- commons: aws -*",
            "account 7* (account-reset); what the test made, removed after the test "
            "(--keep-failed keeps them):",
            "  s3 orders-archive",
        ]
    )
    text = result.stdout.str()
    assert (
        '    closest expectation: {"headers": {"X-Tenant": ["acme"]}, "method": "POST", '
        '"path": "/orders"}\n'
        '    - headers: expected {"X-Tenant": ["acme"]}, got {"X-Tenant": "other"}\n'
    ) in text
    result.stdout.fnmatch_lines(
        [
            "*- commons: kafka -*",
            "topics, deleted after the test; --keep-failed keeps them:",
            "  pc-*-orders: 1 partition(s), 3 record(s)",
        ]
    )
    # one section per failing test that used the service; nothing on the passing test
    assert text.count("- commons: postgres -") == 1
    assert text.count("- commons: redis -") == 1
    assert text.count("- commons: mysql -") == 1
    assert "GET /health" not in text
    for password in (pytester.path / "passwords").read_text().split():
        assert password not in text


KEEP = """
def test_fails_after_writing(postgres, mysql, redis, aws):
    redis.set("evidence", "42")
    bucket = aws.bucket()
    aws.client("s3").put_object(Bucket=bucket, Key="evidence", Body=b"42")
    with open("bucket", "w") as fh:
        fh.write(bucket)
    with postgres.connect() as conn:
        conn.execute("CREATE TABLE evidence (x int)")
        conn.execute("INSERT INTO evidence VALUES (42)")
        conn.commit()
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE evidence (x int)")
        cur.execute("INSERT INTO evidence VALUES (7)")
        conn.commit()
    with open("names", "w") as fh:
        fh.write(postgres.name + " " + mysql.name)
    assert False

def test_passes(postgres, mysql, redis, aws):
    assert redis.dbsize() == 0
    assert aws.client("s3").list_buckets()["Buckets"] == []
    with open("passed", "w") as fh:
        fh.write(postgres.name + " " + mysql.name)
"""


@pytest.mark.usefixtures("private_runtime")
def test_keep_failed_keeps_the_failing_tests_databases_and_servers(
    pytester: pytest.Pytester,
) -> None:
    import psycopg
    import pymysql

    pytester.makepyfile(test_keep=KEEP)
    try:
        result = pytester.runpytest_subprocess(*LOCAL, "--keep-failed", "-p", "no:randomly")
        result.assert_outcomes(failed=1, passed=1)
        result.stdout.fnmatch_lines(
            [
                "database pc_*: kept (--keep-failed): DROP DATABASE it when done, or "
                "`pytest-commons down`",
                "  connect: psql * (the password: `pytest-commons list --show-passwords`)",
            ]
        )
        kept_redis = re.search(
            r"kept \(--keep-failed\): moved to database (\d+) after the test", result.stdout.str()
        )
        assert kept_redis is not None
        kept_aws = re.search(r"kept \(--keep-failed\) in account (\d+)", result.stdout.str())
        assert kept_aws is not None
        kept_pg, kept_my = (pytester.path / "names").read_text().split()
        passed_pg, passed_my = (pytester.path / "passed").read_text().split()
        listed = json.loads(commons_cli("list", "--json", "--show-passwords").stdout)
        urls = {k["service"]: k for k in listed["kept"]}
        assert set(urls) == {"postgres", "mysql", "redis", "aws"}, urls
        pg_url = urls["postgres"]["url"].rsplit("/", 1)[0]
        with psycopg.connect(f"{pg_url}/{kept_pg}") as conn:
            assert conn.execute("SELECT x FROM evidence").fetchall() == [(42,)]
        # a later run (its owner, the first run, is dead now) does not collect a kept database
        pytester.makepyfile(test_keep="def test_ok(postgres, mysql, redis, aws):\n    pass\n")
        pytester.runpytest_subprocess(*LOCAL, "--keep-failed").assert_outcomes(passed=1)
        info = urls["mysql"]["info"]
        my = pymysql.connect(
            host=info["host"], port=int(info["port"]), user=info["user"], password=info["password"]
        )
        with psycopg.connect(f"{pg_url}/postgres") as conn:
            names = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
        try:
            with my.cursor() as cur:
                cur.execute(f"SELECT x FROM `{kept_my}`.evidence")
                assert cur.fetchall() == ((7,),)
                cur.execute("SHOW DATABASES")
                my_names = {row[0] for row in cur.fetchall()}
        finally:
            my.close()
        import redis as redis_py

        redis_base = urls["redis"]["url"].rstrip("/").rsplit("/", 1)[0]
        if redis_base.endswith("/"):  # a URL without a database path
            redis_base = redis_base.rstrip("/")
        kept_db = redis_py.Redis.from_url(f"{redis_base}/{kept_redis.group(1)}")
        try:
            assert kept_db.get("evidence") == b"42"
        finally:
            kept_db.close()
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=urls["aws"]["url"],
            region_name="us-east-1",
            aws_access_key_id=kept_aws.group(1),
            aws_secret_access_key="any",
        )
        bucket = (pytester.path / "bucket").read_text()
        assert s3.get_object(Bucket=bucket, Key="evidence")["Body"].read() == b"42"
        assert kept_pg in names
        assert passed_pg not in names
        assert kept_my in my_names
        assert passed_my not in my_names
    finally:
        down = commons_cli("down")
    assert "stopped postgres (local)" in down.stdout
    assert "stopped mysql (local)" in down.stdout
    assert "stopped redis (local)" in down.stdout
    assert "stopped aws (local)" in down.stdout


LEAKS = """
import psycopg
import pymysql
import pytest
import redis as redis_py

HELD = []

@pytest.fixture
def pool(postgres):
    conns = [psycopg.connect(postgres.dsn) for _ in range(2)]
    yield conns
    for conn in conns:   # closed at teardown: not a leak
        conn.close()

def test_leaks_postgres(postgres):
    HELD.append(psycopg.connect(postgres.dsn, application_name="left-open"))

def test_leaks_mysql(mysql):
    HELD.append(pymysql.connect(**mysql.info.connect_kwargs()))

def test_leaks_redis(redis_url):
    client = redis_py.Redis.from_url(redis_url)
    client.ping()
    HELD.append(client)

def test_closes_everything(postgres, mysql, redis_url, pool):
    with psycopg.connect(postgres.dsn):
        pass
    pymysql.connect(**mysql.info.connect_kwargs()).close()
    client = redis_py.Redis.from_url(redis_url)
    client.ping()
    client.close()

def test_uses_the_fixtures_own_clients(postgres, redis):
    postgres.connect()        # closed by the fixture
    redis.client_setname("renamed-by-the-test")   # the fixture's own connection
"""


@pytest.mark.parametrize("mode", ["warn", "fail", "off"])
def test_connections_a_test_leaves_open_are_reported(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_leaks=LEAKS)
    args = [*LOCAL, "-p", "no:randomly", f"--commons-leaks={mode}"]
    if mode == "off":
        args += ["-W", "error"]
    result = pytester.runpytest_subprocess(*args)
    text = result.stdout.str()
    if mode == "off":
        result.assert_outcomes(passed=5)
        assert "CommonsLeakWarning" not in text
        assert "left 1 connection" not in text
        return
    if mode == "fail":
        result.assert_outcomes(passed=5, errors=3)
    else:
        result.assert_outcomes(passed=5, warnings=3)
    result.stdout.fnmatch_lines(
        [
            "*postgres: test_leaks.py::test_leaks_postgres left 1 connection(s) open to its "
            "database pc_*:",
            "*backend pid *: application left-open, idle, *; opened by this pytest process*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*mysql: test_leaks.py::test_leaks_mysql left 1 connection(s) open to its database*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*redis: test_leaks.py::test_leaks_redis left 1 connection(s) open to its database*",
            "*client id *: from 127.0.0.1:*, name -, * last command ping; opened by this pytest*",
        ]
    )
    assert "test_closes_everything left" not in text
    assert "test_uses_the_fixtures_own_clients left" not in text
