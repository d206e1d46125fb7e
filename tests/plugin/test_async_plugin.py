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


REDIS_USES = """
import asyncio
import pytest

{header}

async def test_pipeline(redis_async):
    async with redis_async.pipeline(transaction=True) as pipe:
        pipe.set("a", 1).incr("a").get("a")
        assert await pipe.execute() == [True, 2, b"2"]

async def test_pubsub(redis_async):
    pubsub = redis_async.pubsub()
    await pubsub.subscribe("news")
    assert await redis_async.publish("news", "hello") == 1
    messages = []
    while not messages:  # the subscribe confirmation comes first
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        if msg:
            messages.append(msg["data"])
    assert messages == [b"hello"]
    await pubsub.aclose()

async def test_pubsub_left_subscribed(redis_async):
    pubsub = redis_async.pubsub()
    await pubsub.subscribe("left")  # never unsubscribed: its connection is not reused

async def test_blocking_pop_while_another_connection_pushes(redis_async):
    pop, push = redis_async.blpop(["q"], timeout=5), redis_async.lpush("q", "x")
    popped, pushed = await asyncio.gather(pop, push)
    assert popped == (b"q", b"x") and pushed == 1

async def test_cancelled_mid_reply(redis_async):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(redis_async.blpop(["never"], timeout=0), 0.05)
    assert await redis_async.set("after", 1)  # a new connection; the cut-off one is closed

async def test_aclose_in_the_test(redis_async):
    await redis_async.set("k", 1)
    await redis_async.aclose()

async def test_server_restarted(redis_async, redis_service):
    await redis_async.set("k", 1)  # its connection is kept for the next test...
    redis_service.restart()  # ...and the server closes it

async def test_after_the_restart(redis_async):
    assert await redis_async.set("k", 2)  # a new socket, not the dead kept one

@pytest.mark.parametrize("n", range(2))
async def test_next_tests_start_clean(redis_async, redis, n):
    assert await redis_async.dbsize() == 0
    assert await redis_async.set("k", n)
    clients = redis.client_list()
    assert not [c for c in clients if "b" in c.get("flags", "")], clients  # the cut-off BLPOP
    assert not [c for c in clients if c.get("sub") not in (None, "0")], clients  # the pub/sub
"""


def _check_uses(result: pytest.RunResult) -> None:
    result.assert_outcomes(passed=10)
    output = result.stdout.str() + result.stderr.str()
    for sign in SIGNS:
        assert sign not in output


@pytest.mark.parametrize("scope", ["function", "session"])
def test_redis_async_uses(pytester: pytest.Pytester, scope: str) -> None:
    """Pipelines, pub/sub, blocking commands on two connections at once, a command cancelled
    mid-reply, aclose() in the test, a server restart: on a new loop per test and on one loop,
    under -W error, and what a test left (a subscription, a blocked BLPOP) is gone for the next
    test."""
    pytest.importorskip("pytest_asyncio")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_uses=REDIS_USES.format(header=""))
    result = pytester.runpytest_subprocess(
        "-p", "asyncio", "-p", "no:anyio", "-p", "no:cacheprovider", "-p", "no:randomly",
        "-W", "error", "-o", "asyncio_mode=auto",
        "-o", f"asyncio_default_test_loop_scope={scope}",
        "-o", "asyncio_default_fixture_loop_scope=function",
    )  # fmt: skip
    _check_uses(result)


def test_redis_async_uses_anyio(pytester: pytest.Pytester) -> None:
    pytest.importorskip("anyio")
    pytester.makeconftest(CONFTEST)
    header = (
        "pytestmark = pytest.mark.anyio\n\n"
        "@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
    )
    pytester.makepyfile(test_uses=REDIS_USES.format(header=header))
    result = pytester.runpytest_subprocess(
        "-p", "anyio", "-p", "no:asyncio", "-p", "no:cacheprovider", "-p", "no:randomly",
        "-W", "error",
    )  # fmt: skip
    _check_uses(result)
