"""Several machines, one set of servers: four runs at once against one external PostgreSQL,
MySQL, Redis, Kafka, MockServer (the engine's hub) and AWS endpoint do not see each other's
state and leave nothing behind (issue 21, "More than one machine"; docs/ci.md).

The shared servers are started by a run with --reuse-services in a private runtime directory
(local backend) and stopped with `pytest-commons down` at the end; the four runs reach them
only by URL (the external backend), each with two xdist workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import commons_cli

for _module in ("psycopg", "pymysql", "redis", "confluent_kafka", "boto3", "httpx"):
    pytest.importorskip(_module)

pytestmark = pytest.mark.usefixtures("clean_env")

START = """
def test_start(postgres, mysql, redis, kafka, mockserver_url, aws):
    pass
"""

# every test checks it sees only its own state; RUN is the run's number (0-3)
SUITE = """
import os

import httpx
import pytest

RUN = os.environ["RUN"]


@pytest.mark.parametrize("n", range(4))
def test_postgres(postgres, n):
    with postgres.connect() as conn:
        conn.execute("CREATE TABLE mine (run text)")
        conn.execute("INSERT INTO mine VALUES (%s)", (RUN,))
        assert conn.execute("SELECT run FROM mine").fetchall() == [(RUN,)]


@pytest.mark.parametrize("n", range(4))
def test_mysql(mysql, n):
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE mine (run varchar(8))")
        cur.execute("INSERT INTO mine VALUES (%s)", (RUN,))
        cur.execute("SELECT run FROM mine")
        assert cur.fetchall() == ((RUN,),)


@pytest.mark.parametrize("n", range(4))
def test_redis(redis, n):
    assert redis.dbsize() == 0
    redis.set("run", RUN)
    assert redis.keys("*") == [b"run"]


@pytest.mark.parametrize("n", range(2))
def test_kafka(kafka, n):
    topic = kafka.topic()
    kafka.produce(topic, [RUN.encode()] * 3)
    assert [m.value() for m in kafka.consume(topic, 3)] == [RUN.encode()] * 3


@pytest.mark.parametrize("n", range(4))
def test_mockserver(mockserver_url, n):
    httpx.put(mockserver_url + "/mockserver/expectation", json={
        "httpRequest": {"path": "/who"}, "httpResponse": {"body": RUN},
    }).raise_for_status()
    assert httpx.get(mockserver_url + "/who").text == RUN
    recorded = httpx.put(mockserver_url + "/mockserver/retrieve?type=REQUESTS").json()
    assert [r["path"] for r in recorded] == ["/who"]


@pytest.mark.parametrize("n", range(4))
def test_aws(aws, n):
    s3 = aws.client("s3")
    bucket = aws.bucket()
    s3.put_object(Bucket=bucket, Key="run", Body=RUN.encode())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["run"]
"""

SERVICES = ("postgres", "mysql", "redis", "kafka", "mockserver", "aws")


@pytest.fixture
def shared_servers(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, private_runtime: Path
) -> dict[str, Any]:
    """The six servers, kept by a --reuse-services run (stopped by ``private_runtime``):
    {service: `pytest-commons list` entry}."""
    clean_env.setenv("PYTEST_COMMONS_KAFKA_ENGINE", "tansu")
    starter = tmp_path / "starter"
    starter.mkdir()
    (starter / "test_start.py").write_text(START)
    started = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--reuse-services", "--backend-order=local", "test_start.py"],
        cwd=starter, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    listed = json.loads(commons_cli("list", "--json", "--show-passwords").stdout)
    kept = {entry["service"]: entry for entry in listed["kept"]}
    assert set(kept) == set(SERVICES), kept
    return kept


def _external_env(kept: dict[str, Any], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_COMMONS_")}
    env.update(
        PYTEST_COMMONS_POSTGRES_URL=kept["postgres"]["url"],
        PYTEST_COMMONS_MYSQL_URL=kept["mysql"]["url"],
        PYTEST_COMMONS_REDIS_URL=kept["redis"]["url"],
        PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS=kept["kafka"]["url"],
        PYTEST_COMMONS_MOCKSERVER_URL=kept["mockserver"]["url"],
        PYTEST_COMMONS_AWS_ENDPOINT_URL=kept["aws"]["url"],
        PYTEST_COMMONS_BACKEND_ORDER="external",
        PYTEST_COMMONS_SERVICES_MISSING="fail",
        # "another machine": its own runtime directory, nothing shared but the URLs
        PYTEST_COMMONS_RUNTIME_DIR=str(home),
    )
    return env


def _leftovers(kept: dict[str, Any]) -> dict[str, list[str]]:
    """What the plugin's namespaces left on the shared servers."""
    import boto3
    import httpx
    import psycopg
    import pymysql
    import redis as redis_py
    from confluent_kafka.admin import AdminClient

    found: dict[str, list[str]] = {}
    with psycopg.connect(kept["postgres"]["url"], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'pc\\_%' "
            "AND datname NOT LIKE 'pc\\_keep\\_%'"
        ).fetchall()
        found["postgres"] = [r[0] for r in rows]
    info = kept["mysql"]["info"]
    my = pymysql.connect(
        host=info["host"], port=int(info["port"]), user=info["user"], password=info["password"]
    )
    try:
        with my.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE 'pc\\_%'")
            found["mysql"] = [row[0] for row in cur.fetchall()]
    finally:
        my.close()
    client = redis_py.Redis.from_url(kept["redis"]["url"])
    try:
        found["redis"] = [k.decode() for k in client.keys("pytest-commons:claim*")]
        keyspace = client.info("keyspace")
        found["redis"] += [db for db, stats in keyspace.items() if stats.get("keys")]
    finally:
        client.close()
    servers = kept["kafka"]["url"].removeprefix("kafka://")
    topics = AdminClient({"bootstrap.servers": servers}).list_topics(timeout=10).topics
    found["kafka"] = sorted(t for t in topics if t.startswith("pc-"))
    hub = kept["mockserver"]["url"]
    found["mockserver"] = [
        str(e) for e in httpx.put(f"{hub}/mockserver/retrieve?type=ACTIVE_EXPECTATIONS").json()
    ]
    s3 = boto3.client(
        "s3",
        endpoint_url=kept["aws"]["url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    found["aws"] = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    return found


def test_four_runs_share_one_set_of_servers_without_collision_or_leftovers(
    pytester: pytest.Pytester, shared_servers: dict[str, Any], tmp_path: Path
) -> None:
    pytester.makepyfile(test_shared=SUITE)
    before = _leftovers(shared_servers)
    runs = []
    for run in range(4):
        home = tmp_path / f"machine{run}"
        home.mkdir()
        env = _external_env(shared_servers, home) | {"RUN": str(run)}
        runs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:randomly",
                    "-n",
                    "2",
                    f"--basetemp={home / 'tmp'}",
                    "test_shared.py",
                ],
                cwd=pytester.path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [proc.communicate(timeout=600)[0] for proc in runs]
    for run, (proc, out) in enumerate(zip(runs, outputs, strict=True)):
        assert proc.returncode == 0, f"run {run}:\n{out[-4000:]}"
        assert "22 passed" in out, f"run {run}:\n{out[-4000:]}"
        assert "external" in out
    assert _leftovers(shared_servers) == before
