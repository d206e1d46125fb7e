from collections.abc import Iterator

import pytest
from pytest_commons.kafka import Kafka

from commons_events import EventPublisher


@pytest.fixture
def orders(kafka: Kafka) -> str:
    """The ``orders`` topic, three partitions (names are unique per test)."""
    return kafka.topic("orders", partitions=3)


@pytest.fixture
def dead_letters(kafka: Kafka) -> str:
    return kafka.topic("orders-dlq")


@pytest.fixture
def publisher(kafka: Kafka, orders: str) -> Iterator[EventPublisher]:
    publisher = EventPublisher(kafka.producer_config(), orders)
    yield publisher
    publisher.producer.flush(5)


@pytest.fixture
def dlq_publisher(kafka: Kafka, dead_letters: str) -> Iterator[EventPublisher]:
    publisher = EventPublisher(kafka.producer_config(), dead_letters)
    yield publisher
    publisher.producer.flush(5)
