"""The async fixtures (postgres_async, postgres_tx_async, redis_async, mysql_async) through inner
pytest runs under every plugin, mode and loop scope, with ``-W error``: no "different loop", no
unclosed connection, and every connection really closed on the server's side afterwards."""

from __future__ import annotations

import pytest

pytest.importorskip("psycopg")
pytest.importorskip("redis")
pytest.importorskip("aiomysql")

pytestmark = pytest.mark.usefixtures("clean_env")

CONFTEST = """
import gc
import pytest

OPENED = {"redis": [], "mysql": []}

@pytest.fixture(scope="session")
def postgres_schema():
    return "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)"

@pytest.fixture(autouse=True)
def _collect():
    yield
    gc.collect()  # an unclosed transport or connection warns now, under -W error

def pytest_sessionfinish(session):
    # after every fixture's teardown, before the servers stop: a kept connection is gone now
    import redis
    if OPENED.get("url"):
        client = redis.Redis.from_url(OPENED["url"])
        left = {c["name"] for c in client.client_list()} & set(OPENED["redis"])
        client.close()
        if left:
            print(f"REDIS CONNECTIONS LEFT OPEN: {sorted(left)}")
"""

TESTS = """
import pytest
from conftest import OPENED

{header}

async def test_fresh_database(postgres, postgres_async):
    cur = await postgres_async.execute("SELECT current_database()")
    assert (await cur.fetchone())[0] == postgres.name
    await postgres_async.execute("INSERT INTO items (name) VALUES ('a')")
    await postgres_async.commit()

async def test_fresh_database_again(postgres_async):
    cur = await postgres_async.execute("SELECT count(*) FROM items")
    assert (await cur.fetchone())[0] == 0

@pytest.mark.parametrize("n", range(2))
async def test_rolled_back(postgres_tx_async, n):
    cur = await postgres_tx_async.execute("SELECT count(*) FROM items")
    assert (await cur.fetchone())[0] == 0
    await postgres_tx_async.execute("INSERT INTO items (name) VALUES ('kept')")
    await postgres_tx_async.commit()  # a savepoint release: still rolled back at the end
    await postgres_tx_async.execute("INSERT INTO items (name) VALUES ('undone')")
    await postgres_tx_async.rollback()
    cur = await postgres_tx_async.execute("SELECT name FROM items")
    assert await cur.fetchall() == [("kept",)]

@pytest.mark.parametrize("n", range(2))
async def test_redis(redis_async, n):
    assert await redis_async.dbsize() == 0
    await redis_async.client_setname(f"commons-async-{{n}}")
    OPENED.setdefault("ids", []).append(await redis_async.client_id())
    await redis_async.set("k", n)
    OPENED["redis"].append(f"commons-async-{{n}}")

async def test_mysql(mysql_async):
    conn = await mysql_async.connect()
    async with conn.cursor() as cur:
        await cur.execute("SELECT CONNECTION_ID(), DATABASE()")
        conn_id, db = await cur.fetchone()
    assert db == mysql_async.name
    OPENED["mysql"].append(conn_id)
"""

CLOSED = """
from conftest import OPENED

def test_zz_everything_closed(redis, mysql, redis_service):
    OPENED["url"] = redis_service.info.url
    names = {c["name"] for c in redis.client_list()}
    # a session loop still runs: its connection is kept for the next test on it (one
    # connection, named by the last test); on a closed loop nothing is left
    assert OPENED["redis"] and names & set(OPENED["redis"]) <= {OPENED["redis"][-1]}
    with open("redis-ids", "w") as fh:
        fh.write(" ".join(map(str, OPENED["ids"])))
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM information_schema.processlist")
        alive = {row[0] for row in cur.fetchall()}
    assert OPENED["mysql"] and not alive & set(OPENED["mysql"])
"""

SIGNS = (
    "different loop",
    "Event loop is closed",
    "never awaited",
    "nclosed",
    "Task was destroyed",
    "LEFT OPEN",
)


def _check(result: pytest.RunResult) -> None:
    result.assert_outcomes(passed=8)
    output = result.stdout.str() + result.stderr.str()
    for sign in SIGNS:
        assert sign not in output


@pytest.mark.parametrize("scope", ["function", "module", "session"])
@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pytest_asyncio(pytester: pytest.Pytester, mode: str, scope: str) -> None:
    pytest.importorskip("pytest_asyncio")
    pytester.makeconftest(CONFTEST)
    header = f"pytestmark = pytest.mark.asyncio(loop_scope={scope!r})" if mode == "strict" else ""
    pytester.makepyfile(test_async=TESTS.format(header=header), test_zz=CLOSED)
    result = pytester.runpytest_subprocess(
        "-p", "asyncio", "-p", "no:anyio", "-p", "no:cacheprovider", "-W", "error",
        "-o", f"asyncio_mode={mode}",
        "-o", f"asyncio_default_test_loop_scope={scope}",
        "-o", "asyncio_default_fixture_loop_scope=function",
        "-s",
    )  # fmt: skip
    _check(result)
    ids = (pytester.path / "redis-ids").read_text().split()
    # the second redis_async test reuses the first one's server connection: on a module or
    # session loop the same asyncio connection, on a new loop the same authenticated socket
    assert len(ids) == 2
    assert len(set(ids)) == 1, ids


def test_anyio(pytester: pytest.Pytester) -> None:
    pytest.importorskip("anyio")
    pytester.makeconftest(CONFTEST)
    header = (
        "pytestmark = pytest.mark.anyio\n\n"
        "@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
    )
    pytester.makepyfile(test_async=TESTS.format(header=header), test_zz=CLOSED)
    result = pytester.runpytest_subprocess(
        "-p", "anyio", "-p", "no:asyncio", "-p", "no:cacheprovider", "-W", "error", "-s"
    )  # fmt: skip
    _check(result)
