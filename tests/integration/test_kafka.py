"""Kafka against a real broker: groups with confluent-kafka and aiokafka, topic cleanup, unique
names, the consume() failure message, transactions, and the features Tansu lacks (skipped on
the local backend, run for real on Apache Kafka)."""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.kafka.client import FEATURES, Kafka, KafkaWorker, kafka_requires
from pytest_commons.services.kafka.spec import KafkaInfo, KafkaSpec, kafka_metadata


def test_service_reports_broker(kafka_service: ServiceHandle[KafkaInfo]) -> None:
    info = kafka_service.info
    assert info.bootstrap_servers
    answer = kafka_metadata(info.host, info.port, timeout=5)
    assert answer.brokers
    if kafka_service.backend == "local":
        assert kafka_service.version.startswith(("tansu", "apache-kafka"))
        assert info.host == "127.0.0.1"
    spec = kafka_service.spec
    assert isinstance(spec, KafkaSpec)
    assert spec.probe(info, timeout=5) == kafka_service.version


def test_produce_and_consume_through_a_group(kafka: Kafka) -> None:
    topic = kafka.topic("orders")
    kafka.produce(topic, [f"order-{i}" for i in range(10)], key="k")
    messages = kafka.consume(topic, 10)
    assert [m.value() for m in messages] == [f"order-{i}".encode() for i in range(10)]
    assert {m.key() for m in messages} == {b"k"}


def test_consume_through_a_group_resumes_at_its_committed_offset(kafka: Kafka) -> None:
    """consume() assigns partitions without a committed offset at the beginning itself (no
    librdkafka reset back-off); a group that committed goes on from its commit."""
    topic = kafka.topic("resume")
    kafka.produce(topic, ["a", "b", "c", "d"])
    group = kafka.group_id("resume")
    first = kafka.consume(topic, 2, group_id=group)  # auto-commit on close
    assert [m.value() for m in first] == [b"a", b"b"]
    second = kafka.consume(topic, 2, group_id=group)
    assert [m.value() for m in second] == [b"c", b"d"]


def test_raw_confluent_clients_from_the_factories(kafka: Kafka) -> None:
    topic = kafka.topic(partitions=2)
    producer = kafka.producer()
    for i in range(6):
        producer.produce(topic, value=str(i).encode(), partition=i % 2)
    assert producer.flush(10) == 0
    consumer = kafka.consumer()
    consumer.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + 15
    while len(seen) < 6 and time.monotonic() < deadline:
        msg = consumer.poll(0.1)
        if msg is not None and msg.error() is None:
            seen.append(msg.value())
    assert sorted(seen) == [str(i).encode() for i in range(6)]
    assert consumer.assignment(), "the group gave the consumer its partitions"


def _groups(kafka: Kafka) -> set[str]:
    listed = kafka.admin().list_consumer_groups(request_timeout=10).result()
    return {group.group_id for group in listed.valid}


def test_consume_without_a_group_joins_none(kafka: Kafka) -> None:
    """``group=False`` assigns the partitions itself: no group, so no join (≈3 s on Apache
    Kafka, its initial rebalance delay) and nothing to delete afterwards."""
    topic = kafka.topic()
    kafka.produce(topic, ["a", "b"])
    before = _groups(kafka)
    assert [m.value() for m in kafka.consume(topic, 2, group=False)] == [b"a", b"b"]
    assert {g for g in _groups(kafka) - before if g.startswith(kafka.prefix)} == set()
    # the same read through a group does make one (the check above can see groups)
    kafka.consume(topic, 2)
    assert {g for g in _groups(kafka) - before if g.startswith(kafka.prefix)}


@pytest.mark.asyncio
async def test_aiokafka_produce_and_consume_through_a_group(kafka: Kafka) -> None:
    topic = kafka.topic("aio")
    producer = await kafka.aio_producer()
    for i in range(5):
        await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k")
    records = await kafka.aconsume(topic, 5)
    assert [r.value for r in records] == [f"m{i}".encode() for i in range(5)]


@pytest.mark.asyncio
async def test_aiokafka_consumer_factory(kafka: Kafka) -> None:
    topic = kafka.topic()
    kafka.produce(topic, ["x", "y"])
    consumer = await kafka.aio_consumer(topic)
    got: list[bytes] = []
    deadline = time.monotonic() + 15
    while len(got) < 2 and time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=100)).values():
            got += [r.value for r in records]
    assert got == [b"x", b"y"]


def _topic_names(kafka: Kafka) -> set[str]:
    return set(kafka.admin().list_topics(timeout=10).topics)


def test_topics_are_deleted_after_the_test(kafka: Kafka, request: pytest.FixtureRequest) -> None:
    worker: KafkaWorker = request.getfixturevalue("_kafka_worker")
    other = Kafka(worker, "inner")
    made = [other.topic("gone"), other.topic("gone", partitions=3)]
    kafka.produce(made[0], ["data"])
    assert set(made) <= _topic_names(kafka)
    other.cleanup()
    deadline = time.monotonic() + 10
    while set(made) & _topic_names(kafka) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(made) & _topic_names(kafka)


def test_topics_the_application_named_are_deleted_after_the_test(
    kafka: Kafka, kafka_service: ServiceHandle[KafkaInfo], request: pytest.FixtureRequest
) -> None:
    from confluent_kafka.cimpl import NewTopic

    worker: KafkaWorker = request.getfixturevalue("_kafka_worker")
    other = Kafka(worker, "inner")
    other.snapshot_topics()
    fixed = f"app-orders-{uuid.uuid4().hex[:8]}"  # a name the application chose
    kafka.admin().create_topics([NewTopic(fixed, 1, 1)])[fixed].result(10)
    kafka.produce(fixed, ["left behind?"])
    assert fixed in _topic_names(kafka)
    other.cleanup()
    deadline = time.monotonic() + 10
    while fixed in _topic_names(kafka) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fixed not in _topic_names(kafka)
    assert other._before is not None
    assert "__consumer_offsets" not in other.topics


@kafka_requires("group_members")
def test_cleanup_flushes_and_closes_clients_and_deletes_groups(
    kafka: Kafka, request: pytest.FixtureRequest
) -> None:
    """A view's clean-up: a record still in a producer's buffer is delivered (flushed), a
    consumer left in its group is closed (it leaves), and the group is deleted."""
    worker: KafkaWorker = request.getfixturevalue("_kafka_worker")
    topic = kafka.topic("outer")  # the outer view's: it outlives the inner clean-up
    inner = Kafka(worker, "inner")
    producer = inner.producer(linger_ms=60000)  # held in the buffer until a flush
    producer.produce(topic, b"buffered")
    consumer = inner.consumer()
    group = inner.group_ids[-1]
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment():  # joined the group
        assert time.monotonic() < deadline, "the consumer never joined its group"
        consumer.poll(0.1)
    inner.cleanup()
    assert [m.value() for m in kafka.consume(topic, 1, group=False)] == [b"buffered"]
    listed = {g.group_id for g in kafka.admin().list_consumer_groups().result(10).valid}
    assert group not in listed, "the group was not deleted (its consumer still in it?)"
    with pytest.raises(RuntimeError, match="closed"):  # closed, not only flushed
        producer.produce(topic, b"after the clean-up")


def test_clients_the_test_closed_itself_are_no_cleanup_problem(
    kafka: Kafka, request: pytest.FixtureRequest
) -> None:
    """A producer and a consumer the test closed itself: the clean-up neither flushes the
    closed producer (confluent-kafka raises ``Producer has been closed``) nor warns."""
    worker: KafkaWorker = request.getfixturevalue("_kafka_worker")
    inner = Kafka(worker, "inner")
    topic = inner.topic("closed")
    producer = inner.producer()
    producer.produce(topic, b"sent")
    assert producer.flush(10) == 0
    producer.close()
    inner.consumer().close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inner.cleanup()


def test_a_topic_the_test_deleted_itself_is_no_cleanup_problem(
    kafka: Kafka, request: pytest.FixtureRequest
) -> None:
    """A topic of the view the test deleted itself: the clean-up's deletion is answered
    ``UNKNOWN_TOPIC_OR_PART``, which is what it wanted — no warning."""
    worker: KafkaWorker = request.getfixturevalue("_kafka_worker")
    inner = Kafka(worker, "inner")
    topic = inner.topic("gone")
    kafka.admin().delete_topics([topic], operation_timeout=10)[topic].result(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inner.cleanup()


def test_cleanup_keep_closes_the_clients_and_keeps_the_topics(
    kafka: Kafka, request: pytest.FixtureRequest
) -> None:
    """``--keep-failed``: the clean-up closes the view's clients (a buffered record is
    delivered) but leaves its topics for the user to look at, and warns of nothing."""
    worker: KafkaWorker = request.getfixturevalue("_kafka_worker")
    inner = Kafka(worker, "inner")
    topic = inner.topic("kept")
    try:
        producer = inner.producer(linger_ms=60000)  # held in the buffer until a flush
        producer.produce(topic, b"buffered")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            inner.cleanup(keep=True)
        assert topic in _topic_names(kafka)
        assert [m.value() for m in kafka.consume(topic, 1, group=False)] == [b"buffered"]
    finally:
        kafka.admin().delete_topics([topic], operation_timeout=10)[topic].result(10)


def test_cleanup_stops_the_aiokafka_clients_of_a_loop_that_outlives_the_test(
    kafka: Kafka, request: pytest.FixtureRequest
) -> None:
    """A loop still open and idle at the clean-up (pytest-asyncio's module- or session-scoped
    loops, or a loop the test drives itself): the clean-up stops every aiokafka client of the
    view the test left running there — also after one the test stopped itself — within its
    time, and warns of nothing. (The loop's guard would stop them only when the loop closes.)"""
    worker: KafkaWorker = request.getfixturevalue("_kafka_worker")
    topic = kafka.topic("aio")
    inner = Kafka(worker, "inner")
    loop = asyncio.new_event_loop()
    try:
        stopped = loop.run_until_complete(inner.aio_producer())
        loop.run_until_complete(stopped.stop())
        left = loop.run_until_complete(inner.aio_producer())
        loop.run_until_complete(left.send_and_wait(topic, b"sent"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            inner.cleanup()
        assert left._closed, "the producer the test left running was not stopped"  # aiokafka's flag
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.mark.parametrize("keep", [False, True], ids=["delete", "keep"])
def test_an_aiokafka_client_left_on_a_closed_loop_is_reported(
    kafka: Kafka, request: pytest.FixtureRequest, keep: bool
) -> None:
    """An aiokafka client not stopped when its event loop was closed (closed without finalising
    its async generators, so the view's guard never ran) is named in the clean-up's warning —
    with ``--keep-failed`` too — and nothing else is: no stop is tried on the closed loop."""
    from aiokafka.errors import KafkaConnectionError

    from pytest_commons.core.host import free_port

    worker: KafkaWorker = request.getfixturevalue("_kafka_worker")
    inner = Kafka(worker, "inner")
    loop = asyncio.new_event_loop()
    nowhere = f"127.0.0.1:{free_port()}"  # tracked, never started: it holds no connection
    with pytest.raises(KafkaConnectionError):
        loop.run_until_complete(inner.aio_producer(bootstrap_servers=nowhere))
    [(client, _)] = inner._aio
    guards = [guard for guard, _ in inner._guards]
    loop.close()
    try:
        with pytest.warns(UserWarning, match="^kafka fixture cleanup: ") as record:
            inner.cleanup(keep=keep)
        assert [str(w.message) for w in record] == [
            "kafka fixture cleanup: AIOKafkaProducer was not stopped before the test's event "
            "loop closed (await client.stop() in the test)"
        ]
    finally:  # what the guard would have done, on a loop of its own
        for guard in guards:
            asyncio.run(guard.aclose())
        asyncio.run(client.stop())


def test_names_are_unique_per_test_and_worker(kafka: Kafka, request: pytest.FixtureRequest) -> None:
    worker: KafkaWorker = request.getfixturevalue("_kafka_worker")
    first, second = kafka.topic("same"), kafka.topic("same")
    assert first != second
    assert worker.prefix in first
    assert worker.prefix.split("-")[-1] in (
        request.config.workerinput["workerid"]
        if hasattr(request.config, "workerinput")
        else "master",
    )
    next_test = Kafka(worker, "next")
    assert next_test.name("same") not in (first, second)
    assert next_test.prefix != kafka.prefix
    assert kafka.group_id() != next_test.group_id()
    assert kafka.name("we/ird name!") == f"{kafka.prefix}-we-ird-name"
    next_test.cleanup()


def test_consume_failure_lists_what_arrived(kafka: Kafka) -> None:
    topic = kafka.topic("short")
    kafka.produce(topic, ["one", "two"], key="id-1")
    with pytest.raises(pytest.fail.Exception) as failed:
        kafka.consume(topic, 3, timeout=2, group=False)
    text = str(failed.value)
    assert "expected 3 message(s)" in text
    assert "got 2" in text
    assert "value='one'" in text
    assert "value='two'" in text
    assert "key='id-1'" in text
    assert f"{topic}[0]@" in text


def test_consume_failure_on_an_empty_topic_through_a_group(kafka: Kafka) -> None:
    topic = kafka.topic("empty")
    with pytest.raises(pytest.fail.Exception, match=r"got 0"):
        kafka.consume(topic, 1, timeout=1.5)


def test_confluent_transactions_commit_and_abort(kafka: Kafka) -> None:
    topic = kafka.topic("tx")
    producer = kafka.producer(**{"transactional.id": kafka.name("txid")})
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(topic, b"committed")
    producer.commit_transaction(10)
    producer.begin_transaction()
    producer.produce(topic, b"aborted")
    producer.abort_transaction(10)
    producer.begin_transaction()
    producer.produce(topic, b"after")
    producer.commit_transaction(10)
    got = kafka.consume(topic, 2, **{"isolation.level": "read_committed"})
    assert [m.value() for m in got] == [b"committed", b"after"]


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_supports_matches_the_broker(
    kafka: Kafka, kafka_service: ServiceHandle[KafkaInfo], feature: str
) -> None:
    # the deviations belong to the broker (Tansu), wherever it runs
    assert kafka.supports(feature) is (kafka.flavour != "tansu")


def test_unknown_feature_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown Kafka feature"):
        kafka_requires("no_such_feature")


def test_read_uncommitted_sees_aborted_records(kafka: Kafka) -> None:
    # librdkafka purges what is still queued on abort: flush first, so the records reach the
    # broker (without the flush nothing is written and there is nothing to see)
    topic = kafka.topic()
    producer = kafka.producer(**{"transactional.id": kafka.name("txid")})
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(topic, b"aborted")
    assert producer.flush(10) == 0
    producer.abort_transaction(10)
    got = kafka.consume(topic, 1, group=False, **{"isolation.level": "read_uncommitted"})
    assert got[0].value() == b"aborted"


# --- the features Tansu lacks: each check runs on every engine; it must pass where the feature
# --- is supported (Apache Kafka) and is pinned to fail on Tansu (so a Tansu that learns the
# --- feature is noticed and FEATURES updated). scripts/kafka-parity.py records the outcomes.


def _check_transactions(kafka: Kafka) -> None:
    topic = kafka.topic("tx")
    producer = kafka.producer(**{"transactional.id": kafka.name("txid")})
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(topic, b"aborted")
    assert producer.flush(10) == 0  # on the broker before the abort: the normal case
    producer.abort_transaction(10)
    producer.begin_transaction()
    producer.produce(topic, b"committed")
    producer.commit_transaction(10)
    got = kafka.consume(topic, 1, group=False, **{"isolation.level": "read_committed"})
    assert [m.value() for m in got] == [b"committed"]


def _check_create_partitions(kafka: Kafka) -> None:
    from confluent_kafka.admin import NewPartitions

    topic = kafka.topic(partitions=1)
    futures = kafka.admin().create_partitions([NewPartitions(topic, 3)], request_timeout=10)
    futures[topic].result(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        meta = kafka.admin().list_topics(topic, timeout=10).topics[topic]
        if len(meta.partitions) == 3:
            break
        time.sleep(0.05)
    assert len(meta.partitions) == 3


def _produce_at(kafka: Kafka, topic: str, stamps: tuple[int, ...]) -> None:
    producer = kafka.producer()
    for i, ts in enumerate(stamps):
        producer.produce(topic, value=str(i).encode(), timestamp=ts)
    assert producer.flush(10) == 0


def _check_offsets_for_times(kafka: Kafka) -> None:
    from confluent_kafka import TopicPartition

    topic = kafka.topic()
    _produce_at(kafka, topic, (1_000_000, 2_000_000, 3_000_000))
    found = kafka.consumer().offsets_for_times([TopicPartition(topic, 0, 2_000_000)], timeout=10)
    assert found[0].offset == 1


def _check_max_timestamp(kafka: Kafka) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    topic = kafka.topic()
    _produce_at(kafka, topic, (1_000_000, 3_000_000, 2_000_000))
    part = TopicPartition(topic, 0)
    futures = kafka.admin().list_offsets({part: OffsetSpec.max_timestamp()}, request_timeout=10)
    answer = next(iter(futures.values())).result(10)
    assert (answer.offset, answer.timestamp) == (1, 3_000_000)


def _check_high_watermark(kafka: Kafka) -> None:
    from confluent_kafka import TopicPartition

    topic = kafka.topic()
    producer = kafka.producer(**{"linger.ms": 200})  # one batch of five records
    for i in range(5):
        producer.produce(topic, value=str(i).encode())
    assert producer.flush(10) == 0
    low, high = kafka.consumer().get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (low, high) == (0, 5)


def _check_log_append_time(kafka: Kafka) -> None:
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME

    topic = kafka.topic(config={"message.timestamp.type": "LogAppendTime"})
    _produce_at(kafka, topic, (1_000_000,))
    kind, stamp = kafka.consume(topic, 1, group=False)[0].timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME
    assert stamp > 1_000_000


def _check_max_message_bytes(kafka: Kafka) -> None:
    from confluent_kafka import KafkaError

    topic = kafka.topic(config={"max.message.bytes": "1024"})
    producer = kafka.producer()
    errors: list[Any] = []
    producer.produce(topic, b"x" * 4096, on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(10)
    assert errors
    assert errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE


def _check_config_defaults(kafka: Kafka) -> None:
    from confluent_kafka.admin import ConfigResource, ResourceType

    resource = ConfigResource(ResourceType.TOPIC, kafka.topic())
    configs = kafka.admin().describe_configs([resource], request_timeout=10)[resource].result(10)
    assert "retention.ms" in configs
    assert configs["retention.ms"].is_default


def _check_group_members(kafka: Kafka) -> None:
    topic = kafka.topic()
    kafka.produce(topic, ["a"])
    group = kafka.group_id()
    consumer = kafka.consumer(group)
    consumer.subscribe([topic])
    deadline = time.monotonic() + 15
    msg = None
    while msg is None and time.monotonic() < deadline:
        msg = consumer.poll(0.1)
    assert msg is not None
    described = kafka.admin().describe_consumer_groups([group], request_timeout=10)
    assert len(described[group].result(10).members) == 1


def _check_auto_create_partitions(kafka: Kafka) -> None:
    name = kafka.name("auto")
    kafka.topics.append(name)  # deleted after the test like kafka.topic()'s
    producer = kafka.producer()
    producer.produce(name, b"x")
    assert producer.flush(15) == 0
    meta = kafka.admin().list_topics(name, timeout=10).topics[name]
    assert len(meta.partitions) == 1


def _check_consumer_protocol(kafka: Kafka) -> None:
    from confluent_kafka import Consumer

    topic = kafka.topic()
    kafka.produce(topic, ["a"])
    conf = kafka.consumer_config(kafka.group_id(), **{"group.protocol": "consumer"})
    for key in ("session.timeout.ms", "heartbeat.interval.ms"):  # not allowed with KIP-848
        conf.pop(key)
    consumer = Consumer(conf)
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 10
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is not None:
                msg = None
        assert msg is not None
        assert msg.value() == b"a"
    finally:
        consumer.close()


CHECKS: dict[str, Callable[[Kafka], None]] = {
    "transactions": _check_transactions,
    "create_partitions": _check_create_partitions,
    "offsets_for_times": _check_offsets_for_times,
    "max_timestamp": _check_max_timestamp,
    "high_watermark": _check_high_watermark,
    "log_append_time": _check_log_append_time,
    "max_message_bytes": _check_max_message_bytes,
    "config_defaults": _check_config_defaults,
    "group_members": _check_group_members,
    "auto_create_partitions": _check_auto_create_partitions,
    "consumer_protocol": _check_consumer_protocol,
}


def test_every_feature_has_a_check() -> None:
    assert set(CHECKS) | {"aiokafka_idempotence", "aiokafka_transactions"} == set(FEATURES)


@pytest.mark.parametrize(
    "feature", [pytest.param(f, marks=pytest.mark.requires(kafka=f)) for f in CHECKS]
)
def test_feature(kafka: Kafka, feature: str) -> None:
    CHECKS[feature](kafka)


@pytest.mark.parametrize("feature", list(CHECKS))
def test_tansu_still_lacks(kafka: Kafka, feature: str) -> None:
    if kafka.flavour != "tansu":
        pytest.skip("pins what Tansu answers; this broker is not Tansu")
    with pytest.raises((AssertionError, Exception)):
        CHECKS[feature](kafka)


async def _aiokafka_idempotent(kafka: Kafka) -> None:
    topic = kafka.topic()
    producer = await kafka.aio_producer(enable_idempotence=True)
    try:
        await producer.send_and_wait(topic, b"once")
    finally:
        await producer.stop()
    assert [r.value for r in await kafka.aconsume(topic, 1)] == [b"once"]


async def _aiokafka_transaction(kafka: Kafka) -> None:
    topic = kafka.topic()
    producer = await kafka.aio_producer(transactional_id=kafka.name(f"tx-{uuid.uuid4().hex}"))
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"in-tx")
    finally:
        await producer.stop()
    got = await kafka.aconsume(topic, 1, isolation_level="read_committed")
    assert [r.value for r in got] == [b"in-tx"]


@kafka_requires("aiokafka_idempotence")
@pytest.mark.asyncio
async def test_aiokafka_idempotent_producer(kafka: Kafka) -> None:
    await _aiokafka_idempotent(kafka)


@kafka_requires("aiokafka_transactions")
@pytest.mark.asyncio
async def test_aiokafka_transactions(kafka: Kafka) -> None:
    await _aiokafka_transaction(kafka)


@pytest.mark.asyncio
async def test_tansu_still_fails_aiokafka_init_producer_id(kafka: Kafka) -> None:
    if kafka.flavour != "tansu":
        pytest.skip("pins what Tansu answers; this broker is not Tansu")
    for check in (_aiokafka_idempotent, _aiokafka_transaction):
        with pytest.raises(Exception):  # noqa: B017 - InitProducerId fails
            await check(kafka)


@kafka_requires("create_partitions")
class TestClassLevelRequirement:
    def test_skipped_with_the_class(self, kafka: Kafka) -> None:
        assert kafka.supports("create_partitions")


def test_a_created_topic_is_known_to_the_broker_at_once(kafka: Kafka) -> None:
    # Apache Kafka (KRaft) answered CreateTopics before its broker knew the topic, and a
    # DescribeConfigs right after failed with UNKNOWN_TOPIC_OR_PART (a CI run, seed 712459691)
    from confluent_kafka.admin import ConfigResource, ResourceType

    for _ in range(20):
        resource = ConfigResource(ResourceType.TOPIC, kafka.topic(partitions=3))
        described = kafka.admin().describe_configs([resource], request_timeout=10)[resource]
        # raises UNKNOWN_TOPIC_OR_PART for a topic the broker does not know (Tansu answers {})
        assert isinstance(described.result(10), dict)
