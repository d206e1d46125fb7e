"""Kafka against a real broker: groups with confluent-kafka and aiokafka, topic cleanup, unique
names, the consume() failure message, transactions, and the features Tansu lacks (skipped on
the local backend, run for real on Apache Kafka)."""

from __future__ import annotations

import time
import uuid

import pytest

from pytest_commons.kafka import FEATURES, Kafka, KafkaWorker, kafka_requires
from pytest_commons.registry import ServiceHandle
from pytest_commons.services.kafka import KafkaInfo, KafkaSpec, kafka_metadata


def test_service_reports_broker(kafka_service: ServiceHandle[KafkaInfo]) -> None:
    info = kafka_service.info
    assert info.bootstrap_servers
    answer = kafka_metadata(info.host, info.port, timeout=5)
    assert answer.brokers
    if kafka_service.backend == "local":
        assert kafka_service.version.startswith("tansu")
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


def test_consume_without_a_group_is_fast(kafka: Kafka) -> None:
    topic = kafka.topic()
    kafka.produce(topic, ["a", "b"])
    started = time.monotonic()
    assert [m.value() for m in kafka.consume(topic, 2, group=False)] == [b"a", b"b"]
    assert time.monotonic() - started < 5


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


# --- what Tansu 0.6 lacks: real tests on Apache Kafka (the local Apache engine,
# --kafka-engine=apache; an apache/kafka container; a broker URL). On Tansu each skips with
# the feature, why Tansu lacks it and where it runs (test_kafka_plugin checks that reason).


@kafka_requires("create_partitions")
def test_create_partitions(kafka: Kafka) -> None:
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


@kafka_requires("offsets_for_times")
def test_offsets_for_times(kafka: Kafka) -> None:
    from confluent_kafka import TopicPartition

    topic = kafka.topic()
    producer = kafka.producer()
    now = int(time.time() * 1000)  # recent: a real broker's retention would drop 1970 stamps
    stamps = (now - 3_000, now - 2_000, now - 1_000)
    for i, ts in enumerate(stamps):
        producer.produce(topic, value=str(i).encode(), timestamp=ts)
    assert producer.flush(10) == 0
    consumer = kafka.consumer()
    found = consumer.offsets_for_times([TopicPartition(topic, 0, stamps[1])], timeout=10)
    assert found[0].offset == 1


@kafka_requires("high_watermark")
def test_high_watermark_after_a_multi_record_batch(kafka: Kafka) -> None:
    topic = kafka.topic()
    producer = kafka.producer(**{"linger.ms": 200})  # one batch of five records
    for i in range(5):
        producer.produce(topic, value=str(i).encode())
    assert producer.flush(10) == 0
    from confluent_kafka import TopicPartition

    low, high = kafka.consumer().get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (low, high) == (0, 5)


@kafka_requires("consumer_protocol")
def test_kip848_consumer_protocol(kafka: Kafka) -> None:
    topic = kafka.topic()
    kafka.produce(topic, ["a"])
    group_id = kafka.group_id()
    conf = kafka.consumer_config(group_id, **{"group.protocol": "consumer"})
    for key in ("session.timeout.ms", "heartbeat.interval.ms"):  # not allowed with KIP-848
        conf.pop(key)
    from confluent_kafka import Consumer

    consumer = Consumer(conf)
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is not None:
                msg = None
        assert msg is not None
        assert msg.value() == b"a"
    finally:
        consumer.close()


@kafka_requires("aiokafka_idempotence")
@pytest.mark.asyncio
async def test_aiokafka_idempotent_producer(kafka: Kafka) -> None:
    topic = kafka.topic()
    producer = await kafka.aio_producer(enable_idempotence=True)
    await producer.send_and_wait(topic, b"once")
    assert [r.value for r in await kafka.aconsume(topic, 1)] == [b"once"]


@kafka_requires("aiokafka_transactions")
@pytest.mark.asyncio
async def test_aiokafka_transactions(kafka: Kafka) -> None:
    topic = kafka.topic()
    producer = await kafka.aio_producer(transactional_id=kafka.name(f"tx-{uuid.uuid4().hex}"))
    async with producer.transaction():
        await producer.send_and_wait(topic, b"in-tx")
    got = await kafka.aconsume(topic, 1, isolation_level="read_committed")
    assert [r.value for r in got] == [b"in-tx"]


@kafka_requires("read_uncommitted_aborted")
def test_read_uncommitted_sees_aborted_records(kafka: Kafka) -> None:
    topic = kafka.topic()
    producer = kafka.producer(**{"transactional.id": kafka.name("txid")})
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(topic, b"aborted")
    producer.abort_transaction(10)
    got = kafka.consume(topic, 1, group=False, **{"isolation.level": "read_uncommitted"})
    assert got[0].value() == b"aborted"


@kafka_requires("create_partitions")
class TestClassLevelRequirement:
    def test_skipped_with_the_class(self, kafka: Kafka) -> None:
        assert kafka.supports("create_partitions")
