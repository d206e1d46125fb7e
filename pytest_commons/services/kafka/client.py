"""The ``kafka`` fixture's view: unique topics, fast client settings, consume helpers.

Client libraries (confluent-kafka, aiokafka) are imported only when a helper needs them.

Settings that keep tests fast on every broker: consumer groups use a short session timeout
(Tansu makes a joining member wait about half of ``session.timeout.ms`` — with the client
default of 45 s the first message would take ≈23 s), ``auto.offset.reset=earliest``, a
100 ms fetch wait and a unique group id per consumer; producers send at once (``linger.ms=0``);
every confluent-kafka client retries and reconnects after 10 ms instead of librdkafka's 100 ms
(``retry.backoff.ms``, ``reconnect.backoff.ms``: the connection to the broker it learns from the
bootstrap answer, and a metadata request cut off when the bootstrap connection is dropped,
otherwise wait 50-100 ms; both still back off exponentially up to their ``….max.ms``).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import time
import warnings
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.services.kafka.spec import TANSU, KafkaInfo

if TYPE_CHECKING:
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
    from confluent_kafka import Consumer, Message, Producer
    from confluent_kafka.admin import AdminClient

__all__ = ["FEATURES", "Kafka", "KafkaWorker", "kafka_requires", "missing_feature"]

_TANSU_INIT_PRODUCER_ID = "aiokafka sends InitProducerId v0, which Tansu 0.6 answers with error -1"

#: Features some brokers lack → what the Tansu broker does instead. Each is shown by a test of
#: ``tests/integration/test_kafka.py`` that runs on Apache Kafka and one that pins Tansu's answer.
#: A test that needs one says so with ``@pytest.mark.requires(kafka="feature")`` (or
#: :func:`kafka_requires`): on a broker that lacks it, it is skipped with this reason and the
#: remedy, or fails under ``--services-missing=fail``.
FEATURES: dict[str, str] = {
    "transactions": (
        "Tansu 0.6 does not honour read_committed after an abort: records of an aborted "
        "transaction that reached the broker are delivered"
    ),
    "create_partitions": "Tansu 0.6 does not support CreatePartitions (adding partitions)",
    "offsets_for_times": "Tansu 0.6 answers ListOffsets by timestamp with offset 0",
    "max_timestamp": "Tansu 0.6 answers list_offsets(OffsetSpec.max_timestamp()) with -1001",
    "high_watermark": (
        "Tansu 0.6 reports a wrong high watermark when a batch holds more than one record"
    ),
    "log_append_time": "Tansu 0.6 ignores message.timestamp.type=LogAppendTime",
    "max_message_bytes": "Tansu 0.6 does not enforce the topic's max.message.bytes",
    "config_defaults": "Tansu 0.6 leaves default values out of DescribeConfigs",
    "group_members": "Tansu 0.6 lists no members in DescribeConsumerGroups",
    "auto_create_partitions": (
        "Tansu 0.6 auto-creates topics with 4 partitions (Apache Kafka: num.partitions, 1 here)"
    ),
    "consumer_protocol": (
        "Tansu 0.6 gives KIP-848 consumers (group.protocol=consumer) no assignment"
    ),
    "aiokafka_idempotence": f"aiokafka's idempotent producer fails: {_TANSU_INIT_PRODUCER_ID}",
    "aiokafka_transactions": f"aiokafka transactions fail: {_TANSU_INIT_PRODUCER_ID}",
}

#: Which broker flavour lacks which features.
MISSING: dict[str, frozenset[str]] = {TANSU: frozenset(FEATURES)}

#: what ``@pytest.mark.requires(kafka=...)`` suggests where the broker lacks the feature
REMEDY = (
    "Apache Kafka does: `--kafka-engine=apache` (after `pytest-commons fetch kafka`), an Apache "
    "Kafka image (--kafka-image) or --kafka-bootstrap-servers"
)
_REMEDY = {
    "local": "Apache Kafka does: `--kafka-engine=apache` (after `pytest-commons fetch kafka`)",
    "docker": "Apache Kafka does: an Apache Kafka image (--kafka-image)",
    "external": "Apache Kafka does: point --kafka-bootstrap-servers at one",
}

# fast, test-friendly client settings per broker flavour
_SESSION_MS = {TANSU: 1000}  # Tansu: join waits max(≈1 s, session/2)
_SESSION_MS_DEFAULT = 6000  # Apache Kafka's default group.min.session.timeout.ms
#: librdkafka waits 100 ms before retrying a request (a metadata request cut off when it drops
#: the bootstrap connection) and ≈50 ms (measured) before connecting to the broker it learnt
#: from the bootstrap answer: on a local test broker each such wait is pure delay (both still
#: grow exponentially up to ``retry.backoff.max.ms`` / ``reconnect.backoff.max.ms``)
_BACKOFF = {"retry.backoff.ms": 10, "reconnect.backoff.ms": 10}
_AIO_STOP_SECONDS = 2.0


async def stop_aio_client(client: Any, seconds: float) -> None:
    """Stop an aiokafka producer or consumer within ``seconds``; when its stop hangs (a group
    request nobody answers), close its connections anyway, so no socket outlives the test.
    Raises ``TimeoutError`` after closing them."""
    import asyncio

    try:
        await asyncio.wait_for(client.stop(), seconds)
    finally:
        # the stop, cut short, cancelled the client's tasks; connections it had made stay
        # open until closed here (AIOKafkaClient.close is idempotent)
        network = getattr(client, "_client", None) or getattr(client, "client", None)
        if network is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(network.close(), seconds)


_CLEAN_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


def missing_feature(flavour: str, features: Iterable[str], backend: str = "") -> str | None:
    """The skip reason (with the remedy for ``backend``) when a broker of ``flavour`` lacks one
    of ``features``, else None. Raises ValueError for a feature name it does not know."""
    for feature in features:
        if feature not in FEATURES:
            raise ValueError(f"unknown Kafka feature {feature!r}; known: {', '.join(FEATURES)}")
        if feature in MISSING.get(flavour, ()):
            remedy = _REMEDY.get(backend, "Apache Kafka does")
            return f"kafka: {feature}: {FEATURES[feature]}; {remedy}"
    return None


def kafka_requires(*features: str) -> pytest.MarkDecorator:
    """``@kafka_requires("create_partitions")`` is ``@pytest.mark.requires(kafka=[...])``: the
    test (or every test of a class) is skipped on a broker that lacks a feature — with the
    reason from :data:`FEATURES` and the remedy — and fails under ``--services-missing=fail``.
    """
    missing_feature("", features)  # validate names at import time
    return pytest.mark.requires(kafka=features)


def required_features(item: pytest.Item) -> list[str]:
    """The Kafka features the ``requires`` markers of ``item`` (its class, module) name."""
    found: list[str] = []
    for mark in item.iter_markers("requires"):
        wanted = mark.kwargs.get("kafka", ())
        found += [wanted] if isinstance(wanted, str) else list(wanted)
    return found


def _text(value: bytes | str | None, limit: int = 80) -> str:
    if value is None:
        return "None"
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return repr(value[:limit])
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _encode(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


@dataclass
class KafkaWorker:
    """Per-worker state: connection info, naming prefix, one admin client, timeouts."""

    info: KafkaInfo
    flavour: str
    backend: str
    prefix: str
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _admin: AdminClient | None = None

    @property
    def session_timeout_ms(self) -> int:
        return _SESSION_MS.get(self.flavour, _SESSION_MS_DEFAULT)

    @property
    def heartbeat_ms(self) -> int:
        return max(100, self.session_timeout_ms // 4)

    def admin(self) -> AdminClient:
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient(
                {
                    "bootstrap.servers": self.info.bootstrap_servers,
                    "client.id": f"{self.prefix}-admin",
                    **_BACKOFF,
                }
            )
        return self._admin


class Kafka:
    """One test's view of the broker (what the ``kafka`` fixture gives).

    Everything it names (topics, group ids) carries a prefix unique to the run, the xdist
    worker and the test; topics it created are deleted and clients it created are closed after
    the test.
    """

    def __init__(self, worker: KafkaWorker, nodeid: str = "") -> None:
        self._worker = worker
        self.nodeid = nodeid
        self.prefix = f"{worker.prefix}-{next(worker.counter)}"
        self.topics: list[str] = []
        self.group_ids: list[str] = []
        self._names: set[str] = set()
        self._producers: list[Producer] = []
        self._consumers: list[Consumer] = []
        self._aio: list[tuple[Any, asyncio.AbstractEventLoop]] = []
        self._guards: list[Any] = []
        #: topics on the broker before the test (None: names the application chose are not
        #: cleaned up — on a broker the run does not own)
        self._before: set[str] | None = None

    def snapshot_topics(self, timeout: float = 10) -> None:
        """Remember the broker's topics, so that topics the application creates during the
        test (fixed names, auto-creation) are deleted after it (only on a broker the run owns).
        """
        self._before = set(self.admin().list_topics(timeout=timeout).topics)

    # facts -----------------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        """``host:port[,host:port]``."""
        return self._worker.info.bootstrap_servers

    @property
    def backend(self) -> str:
        """``local``, ``docker`` or ``external``."""
        return self._worker.backend

    @property
    def flavour(self) -> str:
        """``tansu`` (the local engine, or a Tansu found elsewhere) or ``kafka``."""
        return self._worker.flavour

    @property
    def session_timeout_ms(self) -> int:
        """The consumer-group session timeout the helpers use (1000 on Tansu, else 6000)."""
        return self._worker.session_timeout_ms

    def supports(self, feature: str) -> bool:
        """False when this broker lacks ``feature`` (a key of :data:`FEATURES`)."""
        return missing_feature(self.flavour, [feature]) is None

    def requires(self, *features: str) -> None:
        """Skip the running test when the broker lacks one of ``features``."""
        reason = missing_feature(self.flavour, features, self.backend)
        if reason:
            pytest.skip(reason)

    # names -----------------------------------------------------------------------------------
    def name(self, base: str = "t") -> str:
        """A name unique to this run, worker and test (not created): ``<prefix>-<base>``."""
        clean = _CLEAN_NAME.sub("-", base).strip("-") or "t"
        candidate = f"{self.prefix}-{clean}"[:200]
        for n in itertools.count(2):
            if candidate not in self._names:
                break
            candidate = f"{self.prefix}-{clean}-{n}"[:200]
        self._names.add(candidate)
        return candidate

    def group_id(self, base: str = "g") -> str:
        """A unique consumer group id (deleted after the test, best effort)."""
        gid = self.name(base)
        self.group_ids.append(gid)
        return gid

    def topic(
        self,
        name: str = "t",
        partitions: int = 1,
        config: dict[str, str] | None = None,
        *,
        timeout: float = 10,
    ) -> str:
        """Create a topic with a unique name derived from ``name``; return that name.

        It is deleted after the test. Replication factor: 1 on Tansu, the broker's default
        elsewhere.
        """
        from confluent_kafka.cimpl import NewTopic

        topic = self.name(name)
        rf = 1 if self.flavour == TANSU else -1
        new = NewTopic(
            topic, num_partitions=partitions, replication_factor=rf, config=dict(config or {})
        )
        futures = self.admin().create_topics(
            [new], operation_timeout=timeout, request_timeout=timeout
        )
        try:
            futures[topic].result(timeout)
        except Exception as exc:
            pytest.fail(
                f"kafka: creating topic {topic!r} ({partitions} partitions) on "
                f"{self.bootstrap_servers} failed: {_reason(exc, timeout)}",
                pytrace=False,
            )
        self.topics.append(topic)
        self._await_metadata(topic, partitions, timeout)
        return topic

    def _await_metadata(self, topic: str, partitions: int, timeout: float) -> None:
        """Wait until the broker's metadata has ``topic`` with a leader for every partition.

        Apache Kafka (KRaft) answers CreateTopics once the controller has committed the topic;
        the broker learns of it a moment later, and until then a DescribeConfigs or a
        metadata-driven client call sees UNKNOWN_TOPIC_OR_PARTITION. One metadata round trip
        (about a millisecond) when the broker is already up to date.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                meta = self.admin().list_topics(topic=topic, timeout=max(0.1, min(1.0, timeout)))
                known = meta.topics.get(topic)
                if (
                    known is not None
                    and known.error is None
                    and len(known.partitions) == partitions
                    and all(p.leader >= 0 for p in known.partitions.values())
                ):
                    return
            except Exception:  # a metadata call cut off: look again until the deadline
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"kafka: topic {topic!r} was created on {self.bootstrap_servers} but the "
                    f"broker's metadata did not show it with {partitions} led partition(s) "
                    f"within {timeout:g} s",
                    pytrace=False,
                )
            time.sleep(0.01)

    # clients ---------------------------------------------------------------------------------
    def admin(self) -> AdminClient:
        """The worker's confluent-kafka ``AdminClient`` (shared by the worker's tests)."""
        return self._worker.admin()

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        """confluent-kafka producer settings the helpers use, with ``overrides`` applied
        (``linger_ms=5`` and ``**{"linger.ms": 5}`` both work)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "linger.ms": 0,
            "client.id": f"{self.prefix}-producer",
            **_BACKOFF,
        }
        conf.update({k.replace("_", "."): v for k, v in overrides.items()})
        return conf

    def consumer_config(self, group_id: str | None = None, **overrides: Any) -> dict[str, Any]:
        """confluent-kafka consumer settings: unique group, short session, earliest offsets."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": group_id or self.group_id(),
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": self._worker.heartbeat_ms,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "client.id": f"{self.prefix}-consumer",
            **_BACKOFF,
        }
        conf.update({k.replace("_", "."): v for k, v in overrides.items()})
        return conf

    def producer(self, **overrides: Any) -> Producer:
        """A confluent-kafka ``Producer`` (flushed and closed after the test)."""
        from confluent_kafka import Producer

        producer = Producer(self.producer_config(**overrides))
        self._producers.append(producer)
        return producer

    def consumer(self, group_id: str | None = None, **overrides: Any) -> Consumer:
        """A confluent-kafka ``Consumer`` in a unique group (closed after the test)."""
        from confluent_kafka import Consumer

        consumer = Consumer(self.consumer_config(group_id, **overrides))
        self._consumers.append(consumer)
        return consumer

    def aio_producer_config(self, **overrides: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "linger_ms": 0,
            "client_id": f"{self.prefix}-aio-producer",
        }
        conf.update(overrides)
        return conf

    def aio_consumer_config(self, group_id: str | None = None, **overrides: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": group_id or self.group_id(),
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self._worker.heartbeat_ms,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": 100,
            "client_id": f"{self.prefix}-aio-consumer",
        }
        conf.update(overrides)
        return conf

    async def aio_producer(self, **overrides: Any) -> AIOKafkaProducer:
        """A started aiokafka ``AIOKafkaProducer`` (stopped after the test)."""
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**self.aio_producer_config(**overrides))
        await self._track_aio(producer)
        await producer.start()
        return producer

    async def aio_consumer(
        self, *topics: str, group_id: str | None = None, **overrides: Any
    ) -> AIOKafkaConsumer:
        """A started aiokafka ``AIOKafkaConsumer`` subscribed to ``topics`` in a unique group
        (stopped after the test)."""
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(*topics, **self.aio_consumer_config(group_id, **overrides))
        await self._track_aio(consumer)
        await consumer.start()
        return consumer

    async def _track_aio(self, client: Any) -> None:
        """Remember ``client`` for teardown. pytest-asyncio closes the test's event loop before
        function fixtures are torn down, but it finalises async generators first
        (``shutdown_asyncgens``): a parked generator per loop stops the clients there."""
        import asyncio

        loop = asyncio.get_running_loop()
        self._aio.append((client, loop))
        if any(guard_loop is loop for _g, guard_loop in self._guards):
            return
        guard = self._aio_guard(loop)
        await guard.__anext__()
        self._guards.append((guard, loop))

    async def _aio_guard(self, loop: asyncio.AbstractEventLoop) -> AsyncIterator[None]:

        try:
            yield
        finally:
            for client, client_loop in self._aio:
                if client_loop is loop and not getattr(client, "_closed", False):
                    # by now pytest-asyncio has cancelled aiokafka's own tasks: on Apache Kafka
                    # a consumer's LeaveGroup then waits for its request timeout (40 s), so the
                    # stop is bounded (the broker drops the member after its session timeout)
                    with contextlib.suppress(Exception):
                        await stop_aio_client(client, _AIO_STOP_SECONDS)

    def stop_aio_clients(self) -> list[str]:
        """Stop the aiokafka clients made on an event loop that is open and idle (between the
        test and its teardown); return what could not be stopped. Clients of a running or
        closed loop are left to the loop's guard and to :meth:`cleanup`."""

        problems: list[str] = []
        for client, loop in self._aio:
            if getattr(client, "_closed", False) or loop.is_closed() or loop.is_running():
                continue
            try:
                loop.run_until_complete(stop_aio_client(client, _AIO_STOP_SECONDS * 2.5))
            except Exception as exc:
                problems.append(f"stopping {type(client).__name__}: {exc!r}")
        return problems

    # produce / consume -----------------------------------------------------------------------
    def produce(
        self,
        topic: str,
        values: Iterable[bytes | str | None],
        *,
        key: bytes | str | None = None,
        timeout: float = 10,
        **overrides: Any,
    ) -> int:
        """Send ``values`` to ``topic`` with a fresh producer and wait for every delivery;
        return how many were sent. Fails the test with the first delivery error."""
        producer = self.producer(**overrides)
        errors: list[str] = []

        def report(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        count = 0
        for value in values:
            producer.produce(topic, value=_encode(value), key=_encode(key), on_delivery=report)
            count += 1
        left = producer.flush(timeout)
        if errors or left:
            pytest.fail(
                f"kafka.produce to {topic!r}: {left} of {count} messages undelivered "
                f"after {timeout:g} s; errors: {errors[:5] or 'none'}",
                pytrace=False,
            )
        return count

    def consume(
        self,
        topic: str | list[str],
        n: int,
        timeout: float = 10,
        *,
        group_id: str | None = None,
        group: bool = True,
        **overrides: Any,
    ) -> list[Message]:
        """Read ``n`` messages from ``topic`` (from the earliest offset) and return them.

        ``group=True`` subscribes in a (unique) consumer group — the path application code
        takes; partitions the group has no committed offset for are assigned at the beginning
        by the helper (librdkafka would wait 100 ms before looking the earliest offset up);
        ``group=False`` assigns all partitions directly (no group join, much faster).
        Fails the test, listing what did arrive, when fewer than ``n`` come within ``timeout``.
        """
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, KafkaError, TopicPartition

        topics = [topic] if isinstance(topic, str) else list(topic)
        if not group:
            overrides.setdefault("enable.auto.commit", False)
        consumer = self.consumer(group_id, **overrides)
        got: list[Message] = []
        errors: list[str] = []
        assigned: list[str] = []
        started = time.monotonic()
        first_at: float | None = None
        if group:
            explicit = _explicit_earliest(overrides)

            def on_assign(c: Consumer, parts: list[TopicPartition]) -> None:
                assigned.extend(f"{p.topic}[{p.partition}]" for p in parts)
                if not explicit:
                    return
                # librdkafka resets a partition without a committed offset 100 ms after it
                # learns there is none (a fixed back-off); assigned at "beginning", it asks
                # for the earliest offset at once. Committed offsets are kept.
                try:
                    committed = c.committed(parts, timeout=timeout)
                except Exception:  # librdkafka's own reset then
                    return
                for part in committed:
                    if part.offset == OFFSET_INVALID:
                        part.offset = OFFSET_BEGINNING
                c.assign(committed)

            consumer.subscribe(topics, on_assign=on_assign)
        else:
            parts = []
            for name in topics:
                meta = consumer.list_topics(name, timeout=timeout).topics[name]
                parts += [TopicPartition(name, p, OFFSET_BEGINNING) for p in meta.partitions]
            consumer.assign(parts)
            assigned += [f"{p.topic}[{p.partition}]" for p in parts]
        deadline = started + timeout
        try:
            while len(got) < n and time.monotonic() < deadline:
                msg = consumer.poll(min(0.1, max(0.0, deadline - time.monotonic())))
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        errors.append(str(err))
                    continue
                first_at = first_at or time.monotonic()
                got.append(msg)
        finally:
            consumer.close()
            with contextlib.suppress(ValueError):
                self._consumers.remove(consumer)
        if len(got) < n:
            pytest.fail(
                self._consume_failure(
                    topics, n, timeout, got, errors, assigned, group, first_at, started
                ),
                pytrace=False,
            )
        return got

    def _consume_failure(
        self,
        topics: list[str],
        n: int,
        timeout: float,
        got: list[Any],
        errors: list[str],
        assigned: list[str],
        group: bool,
        first_at: float | None,
        started: float,
    ) -> str:
        lines = [
            f"kafka.consume: expected {n} message(s) from {', '.join(topics)} within "
            f"{timeout:g} s, got {len(got)}:"
        ]
        for msg in got[:50]:
            topic, part, off = (
                (msg.topic(), msg.partition(), msg.offset())
                if callable(msg.topic)
                else (msg.topic, msg.partition, msg.offset)
            )
            key, value = (msg.key(), msg.value()) if callable(msg.value) else (msg.key, msg.value)
            lines.append(f"  {topic}[{part}]@{off} key={_text(key)} value={_text(value)}")
        if len(got) > 50:
            lines.append(f"  … and {len(got) - 50} more")
        if group and not assigned:
            lines.append(
                f"  the consumer was never assigned a partition (group join did not "
                f"finish; session.timeout.ms={self.session_timeout_ms})"
            )
        elif assigned:
            lines.append(f"  assigned: {', '.join(assigned)}")
        if first_at is not None:
            lines.append(f"  first message after {first_at - started:.2f} s")
        if errors:
            lines.append(f"  errors: {'; '.join(errors[:5])}")
        lines.append(f"  broker: {self.bootstrap_servers} ({self.backend}, {self.flavour})")
        return "\n".join(lines)

    async def aconsume(
        self,
        topic: str | list[str],
        n: int,
        timeout: float = 10,
        *,
        group_id: str | None = None,
        **overrides: Any,
    ) -> list[ConsumerRecord]:
        """Async :meth:`consume` with aiokafka (always through a consumer group)."""
        topics = [topic] if isinstance(topic, str) else list(topic)
        consumer = await self.aio_consumer(*topics, group_id=group_id, **overrides)
        got: list[ConsumerRecord] = []
        started = time.monotonic()
        first_at: float | None = None
        deadline = started + timeout
        try:
            while len(got) < n and time.monotonic() < deadline:
                left = max(1, int((deadline - time.monotonic()) * 1000))
                batch = await consumer.getmany(timeout_ms=min(100, left), max_records=n - len(got))
                for records in batch.values():
                    if records and first_at is None:
                        first_at = time.monotonic()
                    got.extend(records)
            assigned = [f"{p.topic}[{p.partition}]" for p in consumer.assignment()]
        finally:
            await stop_aio_client(consumer, _AIO_STOP_SECONDS * 2.5)
        if len(got) < n:
            pytest.fail(
                self._consume_failure(
                    topics, n, timeout, got, [], assigned, True, first_at, started
                ),
                pytrace=False,
            )
        return got

    # teardown --------------------------------------------------------------------------------
    def _created_by_the_application(self) -> list[str]:
        """Topics that appeared during the test under names the plugin did not give: internal
        topics (``__…``) and other workers' plugin names (``pc-<run>-<worker>-…``) excepted."""
        assert self._before is not None
        try:
            now = set(self.admin().list_topics(timeout=10).topics)
        except Exception as exc:
            warnings.warn(f"kafka fixture cleanup: listing topics: {exc}", stacklevel=2)
            return []
        run_prefix = self._worker.prefix.rsplit("-", 1)[0] + "-"
        return sorted(
            name
            for name in now - self._before - set(self.topics)
            if not name.startswith(("__", run_prefix))
        )

    def touched_topics(self) -> list[str]:
        """The topics this test created or (on a broker the run started) that appeared while
        it ran under names the application chose."""
        extra = self._created_by_the_application() if self._before is not None else []
        return [*self.topics, *extra]

    def close_clients(self) -> list[str]:
        """Close the clients this view made; what went wrong, as text."""
        problems: list[str] = []
        for consumer in self._consumers:
            with contextlib.suppress(Exception):
                consumer.close()
        for producer in self._producers:
            try:
                producer.flush(5)
                close = getattr(producer, "close", None)
                if close is not None:
                    close()
            except Exception as exc:
                if "has been closed" not in str(exc):  # not one the test closed itself
                    problems.append(f"closing a producer: {exc}")
        problems += self.stop_aio_clients()
        for client, loop in self._aio:
            if not getattr(client, "_closed", False) and loop.is_closed():
                problems.append(
                    f"{type(client).__name__} was not stopped before the test's "
                    "event loop closed (await client.stop() in the test)"
                )
        self._consumers, self._producers, self._aio, self._guards = [], [], [], []
        return problems

    def cleanup(self, keep: bool = False) -> None:
        """Close the clients and delete the topics and groups this view created (``keep``:
        close the clients only — ``--keep-failed`` keeps a failing test's topics and groups)."""
        problems = self.close_clients()
        if keep:
            self.topics, self.group_ids = [], []
            if problems:
                warnings.warn("kafka fixture cleanup: " + "; ".join(problems), stacklevel=1)
            return
        if self._before is not None:
            self.topics += self._created_by_the_application()
        admin = self._worker.admin() if (self.topics or self.group_ids) else None
        if admin is not None and self.group_ids:
            for future in admin.delete_consumer_groups(self.group_ids, request_timeout=10).values():
                with contextlib.suppress(Exception):  # groups never joined do not exist
                    future.result(10)
        if admin is not None and self.topics:
            futures = admin.delete_topics(self.topics, operation_timeout=10, request_timeout=10)
            for name, future in futures.items():
                try:
                    future.result(10)
                except Exception as exc:
                    if "UNKNOWN_TOPIC" not in str(exc):
                        problems.append(f"deleting topic {name!r}: {exc}")
        self.topics, self.group_ids = [], []
        if problems:
            warnings.warn("kafka fixture cleanup: " + "; ".join(problems), stacklevel=1)


def _explicit_earliest(overrides: dict[str, Any]) -> bool:
    """Whether :meth:`Kafka.consume` may assign a group's partitions that have no committed
    offset at the beginning itself: the reset is ``earliest`` (the helpers' default) and the
    group uses the classic protocol with an eager assignor (``assign`` in the callback)."""
    conf = {k.replace("_", "."): str(v).lower() for k, v in overrides.items()}
    return (
        conf.get("auto.offset.reset", "earliest") in ("earliest", "smallest", "beginning")
        and conf.get("group.protocol", "classic") == "classic"
        and "cooperative" not in conf.get("partition.assignment.strategy", "")
    )


def _reason(exc: BaseException, timeout: float) -> str:
    """A readable reason for a failed admin request: a future that timed out has an empty
    message of its own."""
    text = str(exc).strip()
    if text:
        return text
    if isinstance(exc, TimeoutError):  # concurrent.futures.TimeoutError is this class
        return f"no answer from the broker within {timeout:g} s (TimeoutError)"
    return type(exc).__name__
