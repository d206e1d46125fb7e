"""RabbitMQ against a real server (the run's: local node, container or URL): the fixture's
helpers and clients, isolation, the local node's loopback-only listeners, and bad input."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from pathlib import Path

import pika
import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.plugin.options import OPTIONS
from pytest_commons.plugin.settings import Settings
from pytest_commons.services.rabbitmq.client import Rabbitmq
from pytest_commons.services.rabbitmq.spec import RabbitmqInfo, RabbitmqSpec


def settings(**values: str) -> Settings:
    return Settings(lambda key: values.get(key, OPTIONS[key].default))


def test_publish_and_consume_through_a_queue(rabbitmq: Rabbitmq) -> None:
    queue = rabbitmq.queue("jobs")
    assert queue == "jobs.1"
    rabbitmq.publish(queue, b"one", "two")
    assert rabbitmq.consume(queue, 2, timeout=10) == [b"one", b"two"]


def test_topic_exchange_routes_by_key(rabbitmq: Rabbitmq) -> None:
    events = rabbitmq.exchange("events", "topic")
    orders, everything = rabbitmq.queue("orders"), rabbitmq.queue("all")
    rabbitmq.bind(orders, events, "order.*")
    rabbitmq.bind(everything, events, "#")
    rabbitmq.publish("order.created", b"o1", exchange=events)
    rabbitmq.publish("user.created", b"u1", exchange=events)
    assert rabbitmq.consume(orders, 1) == [b"o1"]
    assert sorted(rabbitmq.consume(everything, 2)) == [b"o1", b"u1"]


def test_kombu_round_trip(rabbitmq: Rabbitmq) -> None:
    from kombu import Exchange, Queue

    with rabbitmq.kombu_connection() as conn:
        tasks = Queue("tasks", Exchange("tasks", type="direct"), routing_key="tasks")
        producer = conn.Producer(serializer="json")
        producer.publish({"n": 1}, exchange=tasks.exchange, routing_key="tasks", declare=[tasks])
        simple = conn.SimpleQueue(tasks)
        message = simple.get(block=True, timeout=10)
        assert message.payload == {"n": 1}
        message.ack()
        simple.close()


@pytest.mark.asyncio
async def test_aio_pika_round_trip(rabbitmq: Rabbitmq) -> None:
    import aio_pika

    conn = await rabbitmq.aio_connect()
    channel = await conn.channel()
    queue = await channel.declare_queue("aio")
    await channel.default_exchange.publish(aio_pika.Message(b"hi"), routing_key="aio")
    message = await queue.get(timeout=10)
    assert message is not None
    assert message.body == b"hi"
    await message.ack()


def test_consume_fails_with_what_arrived(rabbitmq: Rabbitmq) -> None:
    queue = rabbitmq.queue()
    rabbitmq.publish(queue, b"only")
    with pytest.raises(pytest.fail.Exception, match=r"1 of 2 messages .* \[b'only'\]"):
        rabbitmq.consume(queue, 2, timeout=0.5)


LEFT_OPEN: list[pika.BlockingConnection] = []


def test_1_a_test_leaves_queues_exchanges_bindings_and_a_connection(rabbitmq: Rabbitmq) -> None:
    channel = rabbitmq.connection().channel()
    channel.exchange_declare("left.x", exchange_type="fanout")
    channel.queue_declare("left.q")
    channel.queue_bind("left.q", "left.x")
    channel.exchange_bind("amq.direct", "amq.fanout")  # between built-in exchanges
    channel.basic_publish("", "left.q", b"x")
    own = pika.BlockingConnection(rabbitmq._worker.spec.parameters(rabbitmq.info))
    own.channel().queue_declare("exclusive.q", exclusive=True)  # not closed by the test
    LEFT_OPEN.append(own)  # (kept referenced: only its socket object is closed, in test 2)


def test_2_the_next_test_on_the_worker_finds_none_of_it(rabbitmq: Rabbitmq) -> None:
    api = rabbitmq._worker.api
    vhost = rabbitmq.vhost.replace("/", "%2F")
    assert api.get(f"/queues/{vhost}").json() == []
    names = {x["name"] for x in api.get(f"/exchanges/{vhost}").json()}
    assert not {"left.x"} & names
    assert all(not n or n.startswith("amq.") for n in names)
    e2e = [b for b in api.get(f"/bindings/{vhost}").json() if b["destination_type"] == "exchange"]
    assert e2e == []
    for conn in LEFT_OPEN:  # the broker closed it after test 1: pika learns it on its next read
        with contextlib.suppress(pika.exceptions.AMQPError):
            conn.process_data_events(time_limit=0)
        assert conn.is_closed


LEFT: dict[str, object] = {}


def test_3_a_test_leaves_its_clients_open(rabbitmq: Rabbitmq) -> None:
    closed_by_the_test = rabbitmq.connection()
    closed_by_the_test.close()  # the view must still close the ones after it
    LEFT["pika"] = rabbitmq.connection()
    kombu = rabbitmq.kombu_connection()
    kombu.connect()
    LEFT["kombu"] = kombu
    # one the management API lists (its statistics lag by seconds): closed server-side too
    own = pika.BlockingConnection(rabbitmq._worker.spec.parameters(rabbitmq.info))
    LEFT["own"] = own
    api, deadline = rabbitmq._worker.api, time.monotonic() + 30
    vhost = rabbitmq.vhost.replace("/", "%2F")
    while not api.get(f"/vhosts/{vhost}/connections").json():
        assert time.monotonic() < deadline, "the management API never listed the connections"
        time.sleep(0.2)


def test_4_they_were_closed_after_it(rabbitmq: Rabbitmq) -> None:
    assert LEFT["pika"].is_closed  # type: ignore[attr-defined]
    assert not LEFT["kombu"].connected  # type: ignore[attr-defined]
    own: pika.BlockingConnection = LEFT["own"]  # type: ignore[assignment]
    with contextlib.suppress(pika.exceptions.AMQPError):
        own.process_data_events(time_limit=0)  # pika learns of the server's close here
    assert own.is_closed


def test_5_a_test_leaves_exchanges_and_bindings_but_no_connection(rabbitmq: Rabbitmq) -> None:
    # (no connection holds a queue: the vhost is emptied piece by piece, not made again)
    channel = rabbitmq.channel()
    channel.exchange_declare("kept.x", exchange_type="topic")
    channel.queue_declare("kept.q")
    channel.queue_bind("kept.q", "kept.x", routing_key="#")
    channel.exchange_bind("amq.direct", "amq.topic", routing_key="k")  # built-in to built-in
    channel.exchange_bind("kept.x", "amq.fanout")


def test_6_the_next_test_finds_none_of_them(rabbitmq: Rabbitmq) -> None:
    api = rabbitmq._worker.api
    vhost = rabbitmq.vhost.replace("/", "%2F")
    assert [q["name"] for q in api.get(f"/queues/{vhost}").json()] == []
    exchanges = {x["name"] for x in api.get(f"/exchanges/{vhost}").json()}
    assert "kept.x" not in exchanges
    bindings = api.get(f"/bindings/{vhost}").json()
    assert [b for b in bindings if b["source"]] == [], bindings  # only the default exchange's


def _listening_sockets(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets in LISTEN state that ``pids`` hold."""
    inodes: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pids[0]}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)  # little-endian 32-bit words
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            host = str(ipaddress.ip_address(words))
            found.add((host, int(port, 16)))
    return found


def test_every_listener_of_the_local_node_is_loopback(
    rabbitmq_service: ServiceHandle[RabbitmqInfo],
) -> None:
    if rabbitmq_service.backend != "local":
        pytest.skip("checks the local backend's node")
    pid = rabbitmq_service.instance.pid
    assert pid
    group = os.getpgid(pid)
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    members = []
    for other in pids:
        try:
            if os.getpgid(other) == group:
                members.append(other)
        except ProcessLookupError:
            continue
    comms = {Path(f"/proc/{p}/comm").read_text().strip() for p in members}
    assert {"beam.smp", "epmd"} <= comms, comms  # the node and its private epmd
    sockets = _listening_sockets(members)
    info = rabbitmq_service.info
    ports = {port for _host, port in sockets}
    assert {info.port, info.management_port} <= ports
    assert len(sockets) >= 4, sockets  # AMQP, management, distribution, epmd
    assert all(ipaddress.ip_address(host).is_loopback for host, _port in sockets), sockets


# bad input ---------------------------------------------------------------------------------
def test_urls_that_are_not_amqp_are_refused_with_the_reason() -> None:
    spec = RabbitmqSpec(settings())
    with pytest.raises(ValueError, match="scheme must be amqp://"):
        spec.parse_url("http://127.0.0.1:5672/")
    with pytest.raises(ValueError, match="no host"):
        spec.parse_url("amqp:///vhost")
    info = spec.parse_url("amqp://u:p%40ss@broker:5673/%2F")
    assert (info.user, info.password, info.vhost, info.port) == ("u", "p@ss", "/", 5673)
    assert info.management_url == "http://broker:15672"
    assert "p@ss" not in repr(info)


def test_refused_credentials_fail_at_once(rabbitmq_service: ServiceHandle[RabbitmqInfo]) -> None:
    from dataclasses import replace

    from pytest_commons.errors import ProbeRefused

    spec = RabbitmqSpec(settings())
    wrong = replace(rabbitmq_service.info, password="not-the-password")
    with pytest.raises(ProbeRefused, match="refused the credentials of 'commons'"):
        spec.probe(wrong, timeout=10)


def test_a_missing_server_script_makes_the_local_backend_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pytest_commons.services.rabbitmq import spec as rabbitmq_spec

    monkeypatch.setattr(rabbitmq_spec, "SERVER_DIRS", [str(tmp_path)])
    monkeypatch.setenv("PATH", str(tmp_path))
    reason, remedy = RabbitmqSpec(settings()).local_unavailable() or ("", "")
    assert reason == "rabbitmq-server is not installed"
    assert remedy.startswith("apt-get install rabbitmq-server")
