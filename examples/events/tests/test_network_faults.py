"""The events layer's producer when the network to the broker fails.

``faults.proxy("kafka")`` gives the test a broker of its own behind a fault proxy (the broker
advertises the proxy's address, so every connection the producer opens passes through it).
"""

import json

from confluent_kafka import TopicPartition
from pytest_commons.faults import Faults
from pytest_commons.faults.kafka import KafkaProxy

from commons_events import EventPublisher


def test_producer_retries_while_the_broker_is_down(faults: Faults) -> None:
    broker = faults.proxy("kafka")
    orders = broker.kafka.topic("orders")
    publisher = EventPublisher(broker.kafka.producer_config(), orders)
    with broker.outage():  # refused connections for about a second
        publisher.publish("order-1", {"total": 10})
        assert publisher.producer.flush(1) == 1, "delivered while the broker was unreachable"
    publisher.flush(20)  # delivered after it came back: the producer retried on its own
    [message] = broker.kafka.consume(orders, 1, group=False)
    assert json.loads(message.value()) == {"total": 10}


def _everything(broker: KafkaProxy, topic: str) -> list[int]:
    """Every record of the topic's partition 0, read until a second passes without one."""
    consumer = broker.kafka.consumer()
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen = []
    while (message := consumer.poll(1.0)) is not None:
        seen.append(json.loads(message.value())["n"])
    return seen


def test_a_lost_answer_does_not_duplicate_events(faults: Faults) -> None:
    """The publisher is idempotent: when the broker's answer to a produce is lost (the
    connection reset on its way back), the producer sends again and the broker keeps one copy."""
    broker = faults.proxy("kafka")
    orders = broker.kafka.topic("orders")
    publisher = EventPublisher(broker.kafka.producer_config(), orders)
    publisher.publish("order-0", {"n": 0})
    publisher.flush(20)  # connected, producer id assigned
    with broker.reset_peer(direction="downstream"):  # requests arrive, answers are cut
        publisher.publish("order-1", {"n": 1})
        assert publisher.producer.flush(1) == 1, "the answer came back through a reset"
    publisher.flush(20)
    assert _everything(broker, orders) == [0, 1]
