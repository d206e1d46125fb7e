"""RabbitMQ against a real server (the run's: local node, container or URL): the fixture's
helpers and clients, isolation, the local node's loopback-only listeners, and bad input."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

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
