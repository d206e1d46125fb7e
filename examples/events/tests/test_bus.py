"""The same event tests on Kafka and on RabbitMQ: ``bus`` is parametrized over both brokers, so
one run checks both (ids ``[kafka]`` and ``[rabbitmq]``)."""

from collections.abc import Iterator

import pytest
from pytest_commons import Kafka, Rabbitmq

from commons_events.bus import Bus, KafkaBus, RabbitBus


@pytest.fixture(params=["kafka", "rabbitmq"])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    made: Bus
    if request.param == "kafka":
        kafka: Kafka = request.getfixturevalue("kafka")
        made = KafkaBus(kafka.producer_config(), kafka.consumer_config(), kafka.topic("events"))
    else:
        rabbitmq: Rabbitmq = request.getfixturevalue("rabbitmq")
        made = RabbitBus(rabbitmq.connection())
    yield made
    made.close()


def test_an_event_reaches_the_consumer(bus: Bus) -> None:
    bus.publish("order-1", {"order": "order-1", "status": "created"})
    [received] = bus.receive(1)
    assert received.key == "order-1"
    assert received.value == {"order": "order-1", "status": "created"}


def test_the_events_of_one_key_keep_their_order(bus: Bus) -> None:
    for seq in range(20):
        bus.publish("order-7", {"seq": seq})
    assert [r.value["seq"] for r in bus.receive(20)] == list(range(20))
