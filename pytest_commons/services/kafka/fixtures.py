"""Kafka fixtures: the session broker, a per-test ``kafka`` view with unique topics and clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_commons.plugin.state import get_registry, service_handle

if TYPE_CHECKING:  # imported by the fixtures: a run that uses no Kafka does not pay for them
    from pytest_commons.core.registry import ServiceHandle
    from pytest_commons.services.kafka.client import Kafka, KafkaWorker
    from pytest_commons.services.kafka.spec import KafkaInfo

__all__ = ["kafka", "kafka_requires_check", "kafka_service"]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Stop the test's aiokafka clients while its event loop still runs them.

    Before any fixture teardown: pytest-asyncio's runner fixture cancels every task of the loop
    (aiokafka's connection readers among them) and closes it; a client stopped after that
    waits for a LeaveGroup answer nobody reads, its stop is cut short and its sockets leak.
    """
    funcargs = getattr(item, "funcargs", {})
    views = [funcargs.get("kafka")]
    # the views of brokers behind fault proxies (faults.proxy("kafka").kafka)
    views += [getattr(p, "kafka", None) for p in getattr(funcargs.get("faults"), "proxies", ())]
    for view in views:
        if view is not None and hasattr(view, "stop_aio_clients"):
            view.stop_aio_clients()


@pytest.fixture(scope="session")
def kafka_service(request: pytest.FixtureRequest) -> ServiceHandle[KafkaInfo]:
    """The run's Kafka-protocol broker: a handle with ``.info`` (``.bootstrap_servers``),
    ``.backend`` (``local`` = Tansu, ``docker``, ``external``), ``.version`` (``tansu 0.6.0``,
    or ``kafka-protocol`` when the broker does not say) and fault injection (on Tansu a restart
    loses all topics: its storage is memory).

    Scope: session; one broker shared by all xdist workers, or one per worker with
    ``kafka_isolation=broker`` (a run-started broker only). Cost: local Tansu ready in
    ≈15-30 ms, Apache Kafka in ≈0.9 s (begun in the background after collection).
    """
    return service_handle(request, "kafka")


@pytest.fixture(scope="session")
def _kafka_worker(
    request: pytest.FixtureRequest, kafka_service: ServiceHandle[KafkaInfo]
) -> Iterator[KafkaWorker]:
    from pytest_commons.services.kafka.client import KafkaWorker
    from pytest_commons.services.kafka.spec import flavour

    registry = get_registry(request.config)
    ctx = registry.ctx
    run = ctx.run_id.rsplit("-", 1)[-1][:6]
    shared = kafka_service.backend == "external" and kafka_service.spec.per_worker
    if shared and ctx.worker_id in ("gw0", "master"):  # said once per run
        from pytest_commons.plugin.progress import notice

        notice(
            f"commons: kafka: {kafka_service.spec.config.named('kafka_isolation')} cannot give "
            f"each worker a broker of its own on the external broker "
            f"{kafka_service.info.describe()}: the workers share it, so topic names the "
            "application chooses may meet across workers"
        )
    worker = KafkaWorker(
        info=kafka_service.info,
        flavour=flavour(kafka_service.version),
        backend=kafka_service.backend,
        prefix=f"pc-{run}-{ctx.worker_id}",
    )
    yield worker
    worker._admin = None


@pytest.fixture
def kafka(request: pytest.FixtureRequest, _kafka_worker: KafkaWorker) -> Iterator[Kafka]:
    """This test's view of the broker: ``.bootstrap_servers``, ``.topic(name="t",
    partitions=1, config=None)`` (creates a topic named uniquely for the run, worker and test,
    returns the name), ``.producer()``, ``.consumer(group_id=None)``, ``.admin()``
    (confluent-kafka), ``await .aio_producer()`` / ``await .aio_consumer(*topics)`` (aiokafka),
    ``.produce(topic, values)``, ``.consume(topic, n, timeout=10)`` and ``await .aconsume(…)``,
    ``.requires(feature)``.

    Clients are tuned for fast tests (short group session timeout, earliest offsets, unique
    group ids). After the test its clients are closed and its topics and groups deleted — on a
    broker the run started (local, docker) also every topic that appeared during the test under
    a name the application chose (fixed names, auto-created topics), so the next test does not
    see its records; on an external broker only what the plugin named.
    Scope: function. Cost: ≈1 ms per topic on Tansu, ≈7 ms on Apache Kafka; a group join
    ≈1.1 s on Tansu, ≈0.12 s on Apache Kafka (≈0.03 s through ``kafka.consume``).
    """
    from pytest_commons.services.kafka.client import Kafka

    view = Kafka(_kafka_worker, request.node.nodeid)
    if _kafka_worker.backend != "external":  # names the application chose: ours to delete
        view.snapshot_topics()
    try:
        yield view
    finally:
        from pytest_commons.plugin.report import keep

        view.cleanup(keep=keep(request.node))


@pytest.fixture
def kafka_requires_check(
    request: pytest.FixtureRequest, kafka_service: ServiceHandle[KafkaInfo]
) -> None:
    """Skips the test when the broker lacks a feature named by ``@kafka_requires(...)`` or
    ``@pytest.mark.requires(kafka=...)`` (the plugin checks those markers by itself; this
    fixture is kept for suites that request it by name). Scope: function. Cost: none."""
    from pytest_commons.services.kafka.client import missing_feature, required_features
    from pytest_commons.services.kafka.spec import flavour

    reason = missing_feature(
        flavour(kafka_service.version), required_features(request.node), kafka_service.backend
    )
    if reason:
        pytest.skip(reason)
