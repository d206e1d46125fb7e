"""The same events over Kafka or RabbitMQ: ``publish(key, value)`` and ``receive(n)``.

Kafka: a keyed topic (one key, one partition, in order). RabbitMQ: a topic exchange ``events``
with the key as routing key and a queue bound to it (one queue: in publish order). Both
publishers wait for the broker's acknowledgement (Kafka ``acks=all``, RabbitMQ publisher
confirms), so a published event is never only in a client buffer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Consumer, Producer


@dataclass(frozen=True)
class Received:
    key: str
    value: dict[str, Any]


class Bus(Protocol):
    def publish(self, key: str, value: dict[str, Any]) -> None: ...

    def receive(self, n: int, timeout: float = 15) -> list[Received]: ...

    def close(self) -> None: ...


class KafkaBus:
    def __init__(self, producer: dict[str, Any], consumer: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self.producer = Producer({"acks": "all", "enable.idempotence": True, **producer})
        self.consumer = Consumer({"auto.offset.reset": "earliest", **consumer})
        self.consumer.subscribe([topic])

    def publish(self, key: str, value: dict[str, Any]) -> None:
        self.producer.produce(self.topic, json.dumps(value).encode(), key=key.encode())
        if self.producer.flush(10):
            raise RuntimeError("kafka: the event was not acknowledged in 10 s")

    def receive(self, n: int, timeout: float = 15) -> list[Received]:
        got: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            msg = self.consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            key = msg.key() or b""
            got.append(Received(key.decode(), json.loads(msg.value() or b"{}")))
        return got

    def close(self) -> None:
        self.consumer.close()
        self.producer.flush(5)


class RabbitBus:
    def __init__(self, connection: Any, exchange: str = "events", queue: str = "events") -> None:
        self.channel = connection.channel()
        self.channel.exchange_declare(exchange, exchange_type="topic")
        self.channel.queue_declare(queue)
        self.channel.queue_bind(queue, exchange, routing_key="#")
        self.channel.confirm_delivery()
        self.exchange, self.queue = exchange, queue

    def publish(self, key: str, value: dict[str, Any]) -> None:
        body = json.dumps(value).encode()
        self.channel.basic_publish(self.exchange, key, body, mandatory=True)

    def receive(self, n: int, timeout: float = 15) -> list[Received]:
        got: list[Received] = []
        for method, _props, body in self.channel.consume(self.queue, inactivity_timeout=timeout):
            if method is None:
                break
            self.channel.basic_ack(method.delivery_tag)
            got.append(Received(method.routing_key, json.loads(body)))
            if len(got) == n:
                break
        self.channel.cancel()
        return got

    def close(self) -> None:
        self.channel.close()
