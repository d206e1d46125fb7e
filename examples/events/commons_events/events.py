"""Publish JSON events keyed by entity; process them at least once.

Ordering: events with the same key go to the same partition (the producer hashes the key), and
the idempotent producer keeps them in send order even when it retries.
At-least-once: the processor commits a message's offset only after it was handled (or
dead-lettered), so a crash in between redelivers it; handlers must be idempotent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaError, Producer

if TYPE_CHECKING:
    from confluent_kafka._types import HeadersType


def _text(data: str | bytes | None) -> str:
    return data.decode() if isinstance(data, bytes) else data or ""


def _pairs(headers: HeadersType | None) -> list[tuple[str, str | bytes | None]]:
    return list(headers.items()) if isinstance(headers, dict) else list(headers or [])


class PublishError(Exception):
    """Events were not acknowledged by the broker."""


@dataclass(frozen=True)
class Event:
    key: str
    value: dict[str, Any]
    topic: str
    partition: int
    offset: int
    headers: dict[str, str] = field(default_factory=dict)


class EventPublisher:
    """``publish(key, value)`` then ``flush()``: JSON values, string keys, delivery checked."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        settings = {"acks": "all", "enable.idempotence": True, **config}
        self.producer, self.topic = Producer(settings), topic
        self.errors: list[str] = []

    def publish(
        self, key: str, value: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self.producer.produce(
            self.topic,
            key=key.encode(),
            value=json.dumps(value, separators=(",", ":")).encode(),
            headers=list((headers or {}).items()),
            on_delivery=self._delivered,
        )
        self.producer.poll(0)

    def flush(self, timeout: float = 10) -> None:
        left = self.producer.flush(timeout)
        if left or self.errors:
            raise PublishError(f"{left} undelivered after {timeout} s; errors: {self.errors[:3]}")

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))


class EventProcessor:
    """Consume ``topic`` in a consumer group and call ``handler`` for each event.

    A handler that raises is retried ``attempts`` times; then the message goes to the dead-letter
    publisher with the error in its headers, and processing moves on. Offsets are committed
    synchronously after each message, never before it was handled.
    """

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        handler: Callable[[Event], None],
        *,
        dead_letters: EventPublisher,
        attempts: int = 3,
    ) -> None:
        self.consumer = Consumer({**config, "enable.auto.commit": False})
        self.consumer.subscribe([topic])
        self.handler, self.dead_letters, self.attempts = handler, dead_letters, attempts
        self.processed = self.dead_lettered = 0

    def run(self, until: Callable[[], bool], timeout: float = 30) -> None:
        """Process until ``until()`` is true; raise TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not reached in {timeout} s ({self.processed} done)")
            self.poll(0.1)

    def poll(self, timeout: float = 1.0) -> bool:
        """Handle at most one message; returns whether there was one."""
        message = self.consumer.poll(timeout)
        if message is None:
            return False
        if (error := message.error()) is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return False
            raise RuntimeError(f"consume error: {error}")
        event = Event(
            key=_text(message.key()),
            value=json.loads(_text(message.value())),
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            headers={k: _text(v) for k, v in _pairs(message.headers())},
        )
        self._handle(event)
        self.consumer.commit(message=message, asynchronous=False)  # only now: at-least-once
        return True

    def close(self) -> None:
        self.consumer.close()

    def _handle(self, event: Event) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                self.handler(event)
                self.processed += 1
                return
            except Exception as exc:
                if attempt == self.attempts:
                    error = f"{type(exc).__name__}: {exc}"
        headers = {
            "error": error,
            "source": f"{event.topic}/{event.partition}/{event.offset}",
            **event.headers,
        }
        self.dead_letters.publish(event.key, event.value, headers)
        self.dead_letters.flush()
        self.dead_lettered += 1
