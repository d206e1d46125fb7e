"""Network faults between a test and real services, on both engines (Toxiproxy and built-in).

Every test runs once per engine; an engine that can't run here is skipped with the reason
(failed under --services-missing=fail, the default in CI). Faults are asserted by what a client
sees — a timeout fires, a reset, an EOF, a refused connect, data in pieces — never by a clock.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import redis as redis_py

from pytest_commons.faults import Faults, Proxy, UnknownFault, UnsupportedProtocol
from pytest_commons.services.redis.spec import encode_command

ENGINES = ["builtin", "toxiproxy"]


@pytest.fixture(params=ENGINES)
def faults_engine(request: pytest.FixtureRequest) -> str:
    """Every test of this module on both engines."""
    return str(request.param)


@pytest.fixture
def proxy(faults: Faults, redis_url: str) -> Proxy:
    return faults.proxy("redis")


def _client(proxy: Proxy, timeout: float = 5.0) -> redis_py.Redis:
    return redis_py.Redis.from_url(
        proxy.url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
    )


@pytest.fixture
def raw(proxy: Proxy) -> Iterator[socket.socket]:
    """A plain socket through the proxy, logged in (local and Docker Redis require a password)
    and answered once (so the link is up)."""
    parts = urlsplit(proxy.url)
    sock = socket.create_connection(proxy.address, timeout=10)
    try:
        if parts.password:
            login = [unquote(parts.username)] if parts.username else []
            sock.sendall(encode_command("AUTH", *login, unquote(parts.password)))
            assert _read_exactly(sock, 5) == b"+OK\r\n"
        sock.sendall(b"PING\r\n")
        assert _read_exactly(sock, 7) == b"+PONG\r\n"
        yield sock
    finally:
        sock.close()


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_proxied_url_reaches_the_tests_own_database(
    proxy: Proxy, redis: redis_py.Redis, redis_url: str
) -> None:
    assert proxy.host == "127.0.0.1"
    assert proxy.url.rsplit("/", 1)[1] == redis_url.rsplit("/", 1)[1]  # same db index
    client = _client(proxy)
    client.set("through", "proxy")
    assert redis.get("through") == b"proxy"
    client.close()


def test_latency_makes_a_short_client_timeout_fire(proxy: Proxy) -> None:
    client = _client(proxy, timeout=0.3)
    assert client.ping()
    with proxy.latency(1500, jitter=100), pytest.raises(redis_py.TimeoutError):
        client.ping()
    fresh = _client(proxy, timeout=5)
    assert fresh.ping()  # removed: answers again
    fresh.close()
    client.close()


def test_latency_upstream_only(proxy: Proxy) -> None:
    client = _client(proxy, timeout=0.3)
    proxy.latency(1500, direction="upstream")
    with pytest.raises(redis_py.TimeoutError):
        client.ping()
    client.close()


def test_bandwidth_limit_slows_a_large_value(
    proxy: Proxy, redis: redis_py.Redis, raw: socket.socket
) -> None:
    redis.set("big", b"x" * 50_000)
    proxy.bandwidth(10)  # 10 KB/s: the 50 KB answer needs ≈5 s
    raw.sendall(b"GET big\r\n")
    got = _read_for(raw, seconds=1.0)
    assert 0 < got < 50_000  # it flows, slowly (unthrottled, all of it arrives in ~1 ms)


def _read_for(sock: socket.socket, seconds: float) -> int:
    """Bytes received within ``seconds`` (the fault, not the clock, is what is asserted)."""
    import time

    got, deadline = 0, time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        got += len(chunk)
    return got


def test_timeout_zero_stalls_until_removed(proxy: Proxy) -> None:
    client = _client(proxy, timeout=0.3)
    stall = proxy.timeout(0)
    with pytest.raises(redis_py.TimeoutError):
        client.ping()
    stall.remove()
    fresh = _client(proxy)
    assert fresh.ping()
    fresh.close()
    client.close()


def test_timeout_closes_the_connection_after_its_delay(proxy: Proxy, raw: socket.socket) -> None:
    proxy.timeout(100)
    raw.sendall(b"PING\r\n")  # dropped
    assert raw.recv(100) == b""  # then closed: EOF, not an answer


def test_reset_peer_resets_new_connections_and_closes_open_ones(
    proxy: Proxy, raw: socket.socket
) -> None:
    with proxy.reset_peer():
        # a connection opened while the fault is on: its next answer is a TCP RST
        fresh = socket.create_connection(proxy.address, timeout=10)
        fresh.sendall(b"PING\r\n")
        with pytest.raises(ConnectionResetError):
            fresh.recv(100)
        fresh.close()
        client = _client(proxy)
        with pytest.raises(redis_py.ConnectionError):
            client.ping()
        client.close()
        # one that was open before: closed when data next passes (as Toxiproxy does)
        raw.sendall(b"PING\r\n")
        assert raw.recv(100) == b""
    after = _client(proxy)
    assert after.ping()
    after.close()


def test_reset_peer_after_a_delay(proxy: Proxy) -> None:
    proxy.reset_peer(after_ms=100)
    sock = socket.create_connection(proxy.address, timeout=10)
    sock.sendall(b"PING\r\n")
    with pytest.raises(ConnectionResetError):
        sock.recv(100)
    sock.close()


def test_slicer_delivers_data_in_small_packets(proxy: Proxy, raw: socket.socket) -> None:
    proxy.slicer(average_size=1, delay_us=50_000)
    raw.sendall(b"PING\r\n")
    first = raw.recv(100)
    assert first == b"+"  # one byte, then the rest 50 ms apart
    assert _read_exactly(raw, 6) == b"PONG\r\n"


def test_limit_data_closes_after_n_bytes(proxy: Proxy, redis: redis_py.Redis) -> None:
    redis.set("big", b"y" * 10_000)
    proxy.limit_data(1000)
    client = _client(proxy)
    with pytest.raises(redis_py.ConnectionError):
        client.get("big")
    client.close()


def test_limit_data_upstream_cuts_a_large_write(proxy: Proxy, redis: redis_py.Redis) -> None:
    proxy.limit_data(100, direction="upstream")
    client = _client(proxy)
    with pytest.raises(redis_py.ConnectionError):
        client.set("big", b"z" * 10_000)
    client.close()
    assert redis.get("big") is None  # the write never reached the server whole


def test_slow_close_and_both_directions(proxy: Proxy) -> None:
    fault = proxy.slow_close(10, direction="both")
    assert {t.stream for t in fault.toxics} == {"upstream", "downstream"}
    client = _client(proxy)
    assert client.ping()
    client.close()
    fault.remove()
    assert proxy.faults == {}


def test_toxicity_zero_never_applies(proxy: Proxy) -> None:
    proxy.reset_peer(toxicity=0.0)
    client = _client(proxy)
    assert client.ping()
    client.close()


def test_down_refuses_and_closes_then_up_accepts_again(proxy: Proxy, raw: socket.socket) -> None:
    proxy.down()
    assert raw.recv(100) == b""  # the open connection is closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=5).close()
    proxy.up()
    client = _client(proxy)
    assert client.ping()
    client.close()
    during = _client(proxy)
    with proxy.outage(), pytest.raises(redis_py.ConnectionError):
        during.ping()
    assert during.ping()  # redis-py reconnects once the proxy is up
    during.close()


def test_unknown_fault_name_is_a_clear_error(proxy: Proxy) -> None:
    with pytest.raises(UnknownFault, match=r"unknown fault 'jitterbug'; known faults: bandwidth"):
        proxy.add("jitterbug")
    with pytest.raises(UnknownFault, match=r"no attribute 'delay_ms'.*latency \(milliseconds"):
        proxy.add("latency", delay_ms=5)
    with pytest.raises(UnknownFault, match="unknown direction 'sideways'"):
        proxy.latency(5, direction="sideways")
    assert proxy.faults == {}


def test_a_target_that_is_not_a_service_is_refused_with_the_reason(faults: Faults) -> None:
    with pytest.raises(
        UnsupportedProtocol,
        match=r"no proxy for .ldap.: name a service \(.*rabbitmq, kafka\), a URL",
    ):
        faults.proxy("ldap")


def test_a_second_proxy_is_independent(faults: Faults, proxy: Proxy) -> None:
    other = faults.proxy("redis")
    assert other.port != proxy.port
    proxy.down()
    client = _client(other)
    assert client.ping()
    client.close()


# every service the faults fixture can route -----------------------------------------------------
def _postgres(url: str) -> Any:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone()


def _mysql(url: str) -> Any:
    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = pymysql.connect(
        host=u.host,
        port=u.port,
        user=u.username,
        password=u.password,
        database=u.database,
        connect_timeout=5,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone()
    finally:
        conn.close()


def _mockserver(url: str) -> Any:
    import httpx

    return httpx.put(f"{url}/mockserver/status", timeout=5).status_code == 200 or None


def _aws(url: str) -> Any:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "sts",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=5),
    )
    return client.get_caller_identity()["Account"]


def _redis(url: str) -> Any:
    client = redis_py.Redis.from_url(url, socket_timeout=5)
    try:
        return client.ping()
    finally:
        client.close()


def _rabbitmq(url: str) -> Any:
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = params.blocked_connection_timeout = 5
    params.connection_attempts = 1
    conn = pika.BlockingConnection(params)
    try:
        return conn.channel().queue_declare("", exclusive=True).method.queue
    finally:
        conn.close()


CHECKS = {
    "postgres": _postgres,
    "mysql": _mysql,
    "redis": _redis,
    "mockserver": _mockserver,
    "aws": _aws,
    "rabbitmq": _rabbitmq,
}


@pytest.mark.parametrize("service", list(CHECKS))
def test_every_service_through_a_proxy_and_down(faults: Faults, service: str) -> None:
    proxied = faults.proxy(service)
    check = CHECKS[service]
    assert check(proxied.url)
    proxied.down()
    with pytest.raises(Exception) as refused:
        check(proxied.url)
    said = f"{refused.value} {refused.value!r}".lower()  # pika's str() is empty
    assert "refused" in said or "connect" in said
    proxied.up()
    assert check(proxied.url)


def test_a_service_that_is_not_there_closes_the_client(faults: Faults) -> None:
    from pytest_commons.core.host import free_port

    nowhere = faults.proxy(("127.0.0.1", free_port()))
    sock = socket.create_connection(nowhere.address, timeout=10)
    sock.sendall(b"PING\r\n")
    try:
        answer = sock.recv(100)
    except ConnectionResetError:  # Toxiproxy may end it with a reset: no answer either way
        answer = b""
    assert answer == b""
    sock.close()


def test_megabytes_pass_intact_through_faults(proxy: Proxy, redis: redis_py.Redis) -> None:
    value = bytes(range(256)) * 8192  # 2 MiB: the proxy's buffers fill and drain
    proxy.latency(1, direction="both")
    proxy.slicer(average_size=65536, size_variation=1024, direction="upstream")
    client = _client(proxy, timeout=30)
    client.set("blob", value)
    assert redis.get("blob") == value
    assert client.get("blob") == value
    client.close()


def test_a_close_on_either_side_ends_the_whole_connection(
    proxy: Proxy, raw: socket.socket, redis: redis_py.Redis
) -> None:
    raw.sendall(b"CLIENT SETNAME proxied\r\n")
    assert _read_exactly(raw, 5) == b"+OK\r\n"
    assert "proxied" in _client_names(redis)
    raw.shutdown(socket.SHUT_WR)  # the client's end: the proxy closes the service side too
    _wait_until(lambda: "proxied" not in _client_names(redis), "the proxied client to go")
    assert raw.recv(100) == b""
    other = socket.create_connection(proxy.address, timeout=10)
    other.sendall(b"QUIT\r\n")  # the service's end: the client's side is closed after +OK
    assert _read_exactly(other, 5) == b"+OK\r\n"
    assert other.recv(100) == b""
    other.close()


def _client_names(redis: redis_py.Redis) -> list[str]:
    return [str(c.get("name")) for c in redis.client_list()]


def _wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


# Kafka: a broker of the test's own behind the proxy ---------------------------------------------
def _broker_address_seen_by_clients(servers: str) -> set[str]:
    """Where the broker tells clients to connect (its advertised listener), from metadata."""
    from confluent_kafka.admin import AdminClient

    brokers = AdminClient({"bootstrap.servers": servers}).list_topics(timeout=10).brokers
    return {f"{b.host}:{b.port}" for b in brokers.values()}


def test_kafka_clients_reach_the_broker_only_through_the_proxy(faults: Faults, kafka: Any) -> None:
    """Metadata names the proxy, so produce and fetch pass it too: with the proxy down a
    producer cannot deliver, and delivers once it is up (the producer's own retries)."""
    proxy = faults.proxy("kafka")
    assert proxy.bootstrap_servers == f"127.0.0.1:{proxy.port}"
    assert _broker_address_seen_by_clients(proxy.bootstrap_servers) == {proxy.bootstrap_servers}
    assert proxy.bootstrap_servers != kafka.bootstrap_servers, "not the run's broker"
    view = proxy.kafka
    topic = view.topic()
    view.produce(topic, ["before"])
    producer = view.producer(**{"message.timeout.ms": 30000})
    with proxy.outage():
        producer.produce(topic, b"during")
        assert producer.flush(1) == 1, "delivered while the only way to the broker was down"
    assert producer.flush(20) == 0, "not delivered after the proxy came back"
    got = [m.value() for m in view.consume(topic, 2, group=False)]
    assert got == [b"before", b"during"]


def test_kafka_latency_on_the_proxy_reaches_fetches(faults: Faults) -> None:
    """A fault on the proxy reaches the connections opened from metadata (the fetch path),
    not only the bootstrap request: a consumer times out waiting under a stall, then reads."""
    proxy = faults.proxy("kafka")
    view = proxy.kafka
    topic = view.topic()
    view.produce(topic, ["x"])
    consumer = view.consumer(**{"socket.timeout.ms": 10000})
    from confluent_kafka import TopicPartition

    consumer.assign([TopicPartition(topic, 0, 0)])
    with proxy.timeout(direction="downstream"):  # every answer from the broker is dropped
        assert consumer.poll(1.5) is None
    end = time.monotonic() + 30
    message = None
    while message is None and time.monotonic() < end:  # fetches resume once it is removed
        message = consumer.poll(0.5)
    assert message is not None, "no message within 30 s of the stall's removal"
    assert message.value() == b"x"


def test_kafka_proxies_are_separate_brokers_and_go_at_teardown(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, faults_engine: str
) -> None:
    """Each proxy has its own, empty broker; both are stopped when the test ends."""
    out = pytester.path / "pids"
    pytester.makepyfile(
        f"""
        def test_two(faults):
            first, second = faults.proxy("kafka"), faults.proxy("kafka")
            topic = first.kafka.topic("only-here")
            assert topic in first.kafka.admin().list_topics(timeout=10).topics
            assert topic not in second.kafka.admin().list_topics(timeout=10).topics
            with open({str(out)!r}, "w") as fh:
                fh.write(f"{{first.instance.pid}} {{second.instance.pid}}")
        """
    )
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    result = pytester.runpytest_subprocess(f"--faults-engine={faults_engine}")
    result.assert_outcomes(passed=1)
    import os

    for pid in map(int, out.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.asyncio
async def test_kafka_proxy_aio_clients_stop_while_the_tests_loop_runs(faults: Faults) -> None:
    """aiokafka clients of a proxied broker's view are stopped right after the test, like the
    ``kafka`` fixture's (at the faults fixture's teardown the loop would be closed: a warning,
    an error here)."""
    proxy = faults.proxy("kafka")
    topic = proxy.kafka.topic()
    producer = await proxy.kafka.aio_producer()
    await producer.send_and_wait(topic, b"x")
    consumer = await proxy.kafka.aio_consumer(topic)
    assert (await consumer.getone()).value == b"x"
