"""The events layer's producer while the broker is unreachable for a second — skipped: a TCP
fault proxy cannot carry Kafka (the broker tells clients its own address in metadata, so they
leave the proxy after the first request). docs/faults.md explains; the whole-broker faults of
``kafka_service`` (stop/start, pause/resume) exist for this, but they affect every test of the
run at once."""

import pytest
from pytest_commons.faults import Faults, UnsupportedProtocol
from pytest_commons.kafka import Kafka

from commons_events import EventPublisher


def test_producer_retries_while_the_broker_is_down(
    faults: Faults, kafka: Kafka, orders: str
) -> None:
    try:
        broker = faults.proxy("kafka")
    except UnsupportedProtocol as exc:
        pytest.skip(str(exc).splitlines()[0])
    # what the test does where the proxy can carry Kafka (a broker advertising the proxy)
    publisher = EventPublisher({"bootstrap.servers": broker.url.split("://", 1)[1]}, orders)
    with broker.outage():
        publisher.publish("order-1", {"total": 10})
    publisher.flush(10)  # delivered after the broker came back: the producer retried
